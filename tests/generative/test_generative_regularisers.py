"""Generative regularisers: closed forms for a linear-Gaussian generator, finite-difference
gradients of the energies of a (non-linear) VAE, and Danskin's gradient of R."""

import pytest
import torch

from spinv.generative.regularisers import (
    CovarianceRegulariser,
    LinearGaussianGenerator,
    MeanOnlyRegulariser,
    RangeConstraint,
    make_regulariser,
)
from spinv.nn.covariance import CholeskyPrecision
from spinv.nn.vae import COVARIANCE_KINDS, GaussianVAE

S = 4


def _u(B=2, seed=1, size=S):
    g = torch.Generator().manual_seed(seed)
    return 0.5 + 0.3 * torch.randn(B, 1, size, size, generator=g, dtype=torch.float64)


def _precision_cov(seed=2):
    g = torch.Generator().manual_seed(seed)
    d = 0.2 * torch.randn(1, 1, S, S, generator=g, dtype=torch.float64)
    w = 0.3 * torch.randn(1, 4, S, S, generator=g, dtype=torch.float64)
    return CholeskyPrecision(d, w, radius=1)


def test_mean_only_value_matches_closed_form():
    gen = LinearGaussianGenerator.random(S, 3, seed=0)
    reg = MeanOnlyRegulariser(gen)
    u = _u()
    value, z = reg.value(u)
    assert torch.allclose(value, gen.closed_form_mean_only(u), rtol=1e-8, atol=1e-10)
    # z* solves (I + W^T W) z = W^T (u - b)
    W = gen.weight.detach()
    r = u.reshape(2, -1) - gen.bias.detach()
    zref = torch.linalg.solve(torch.eye(3, dtype=W.dtype) + W.T @ W, (r @ W).T).T
    assert torch.allclose(z, zref, atol=1e-7)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_covariance_value_matches_closed_form(beta):
    gen = LinearGaussianGenerator.random(S, 3, seed=0, cov=_precision_cov())
    reg = CovarianceRegulariser(gen, logdet_weight=beta)
    u = _u()
    value, _ = reg.value(u)
    ref = gen.closed_form_covariance(u, beta)
    assert torch.allclose(value, ref, rtol=1e-8)


def test_danskin_gradient_matches_gradient_of_closed_form():
    gen = LinearGaussianGenerator.random(S, 3, seed=0, cov=_precision_cov())
    reg = CovarianceRegulariser(gen)
    u = _u().requires_grad_(True)
    gen.closed_form_covariance(u, 1.0).sum().backward()
    _, z = reg.value(u.detach())
    with torch.no_grad():
        g = reg.gradient_u(u.detach(), z)
    assert torch.allclose(g, u.grad, rtol=1e-6, atol=1e-8)


def _vae(kind, seed=0):
    torch.manual_seed(seed)
    vae = GaussianVAE(image_size=8, latent_dim=3, width=4, covariance=kind, rank=2, radius=1)
    vae = vae.double()
    if vae.cov_head is not None:  # non-trivial covariance: perturb the zero-initialised head
        with torch.no_grad():
            last = vae.cov_head.body[-1]
            last.weight.normal_(0.0, 0.3)
            last.bias.normal_(0.0, 0.3)
    return vae


@pytest.mark.parametrize("kind", COVARIANCE_KINDS)
@pytest.mark.parametrize("which", ["mean", "covariance"])
def test_energy_gradients_match_finite_differences(kind, which):
    vae = _vae(kind)
    reg = make_regulariser(which, vae)
    g = torch.Generator().manual_seed(3)
    u = _u(B=1, size=8).requires_grad_(True)
    z = (0.5 * torch.randn(1, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    reg.energy(u, z).sum().backward()
    for var, grad in ((u, u.grad), (z, z.grad)):
        d = torch.randn(var.shape, generator=g, dtype=torch.float64)
        h = 1e-6
        with torch.no_grad():
            var += h * d
            ep = float(reg.energy(u, z).sum())
            var -= 2 * h * d
            em = float(reg.energy(u, z).sum())
            var += h * d
        fd = (ep - em) / (2 * h)
        an = float((grad * d).sum())
        assert abs(fd - an) <= 1e-5 * max(1.0, abs(an)), (kind, which, fd, an)


@pytest.mark.parametrize("kind", COVARIANCE_KINDS)
def test_gradient_u_is_precision_times_residual(kind):
    vae = _vae(kind)
    reg = CovarianceRegulariser(vae)
    u = _u(B=2, size=8).requires_grad_(True)
    z = torch.zeros(2, 3, dtype=torch.float64)
    reg.energy(u, z).sum().backward()
    with torch.no_grad():
        assert torch.allclose(reg.gradient_u(u, z), u.grad, rtol=1e-9, atol=1e-9)


def test_range_constraint_and_errors():
    gen = LinearGaussianGenerator.random(S, 3, seed=0)
    reg = RangeConstraint(gen, latent_weight=2.0)
    z = torch.ones(1, 3, dtype=torch.float64)
    assert float(reg.energy(_u(1), z)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="range constraint"):
        reg.value(_u(1))
    with pytest.raises(ValueError, match="kind"):
        make_regulariser("gan", gen)
    with pytest.raises(TypeError, match="decode_mean"):
        MeanOnlyRegulariser(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="logdet_weight"):
        CovarianceRegulariser(gen, logdet_weight=-1.0)
    with pytest.raises(ValueError, match="z has shape"):
        MeanOnlyRegulariser(gen).energy(_u(2), torch.zeros(2, 5, dtype=torch.float64))
