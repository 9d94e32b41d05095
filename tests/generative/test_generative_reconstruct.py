"""Reconstruction over (u, z): the k-space u-step, CG, agreement of alternating and joint
minimisation with the dense solution of the (convex) linear-Gaussian case, and improvement
over zero filling on real brain slices with a fixed PCA generator."""

import numpy as np
import pytest
import torch

from spinv.generative.reconstruct import (
    FourierDiagonalNormal,
    GenerativeOptions,
    data_fidelity,
    reconstruct_generative,
)
from spinv.generative.regularisers import (
    CovarianceRegulariser,
    LinearGaussianGenerator,
    MeanOnlyRegulariser,
    RangeConstraint,
)
from spinv.linalg import conjugate_gradient
from spinv.nn.covariance import CholeskyPrecision, ScaledIdentity
from spinv.operators import LinearOperator, SubsampledFourier
from spinv.operators.sampling import make_mask

S = 8
N = S * S


def _mask(seed=1, rate=0.4, size=S):
    return make_mask("random", (size, size), rate, seed=seed).double()


def _dense_normal(A):
    E = torch.eye(N, dtype=torch.float64).reshape(N, 1, S, S)
    return A.adjoint(A(E)).real.reshape(N, N).T


def test_fourier_normal_is_re_AstarA_and_solves():
    A = SubsampledFourier(_mask())
    F = FourierDiagonalNormal.from_operator(A, (S, S), torch.float64)
    M = _dense_normal(A)
    E = torch.eye(N, dtype=torch.float64).reshape(N, 1, S, S)
    assert torch.allclose(F.apply(E).reshape(N, N).T, M, atol=1e-12)
    rhs = torch.randn(2, 1, S, S, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u = F.solve(rhs, 2.0, 0.3)
    ref = torch.linalg.solve(2.0 * M + 0.3 * torch.eye(N, dtype=torch.float64),
                             rhs.reshape(2, N).T).T
    assert torch.allclose(u.reshape(2, N), ref, atol=1e-10)


class _Weighted(LinearOperator):
    """Pointwise multiplication by a spatial map: Re A*A is not a convolution."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return self.w * x

    def adjoint(self, y):
        return self.w * y


def test_fourier_normal_refuses_non_convolution():
    w = torch.linspace(0.1, 1.0, N, dtype=torch.float64).reshape(1, 1, S, S)
    with pytest.raises(ValueError, match="circular convolution"):
        FourierDiagonalNormal.from_operator(_Weighted(w), (S, S), torch.float64)


def test_conjugate_gradient_matches_dense_solve():
    g = torch.Generator().manual_seed(0)
    B = torch.randn(N, N, generator=g, dtype=torch.float64)
    M = B @ B.T + 0.5 * torch.eye(N, dtype=torch.float64)
    b = torch.randn(3, 1, S, S, generator=g, dtype=torch.float64)

    def apply(v):
        return (v.reshape(-1, N) @ M).reshape(v.shape)

    x = conjugate_gradient(apply, b, torch.zeros_like(b), rtol=1e-12, max_iterations=300).x
    ref = torch.linalg.solve(M, b.reshape(3, N).T).T
    assert torch.allclose(x.reshape(3, N), ref, atol=1e-8)


def _precision_cov(seed=2):
    g = torch.Generator().manual_seed(seed)
    d = 0.1 * torch.randn(1, 1, S, S, generator=g, dtype=torch.float64)
    w = 0.2 * torch.randn(1, 4, S, S, generator=g, dtype=torch.float64)
    return CholeskyPrecision(d, w, radius=1)


@pytest.mark.parametrize("kind", ["mean", "covariance"])
@pytest.mark.parametrize("method", ["alternating", "joint"])
def test_linear_gaussian_case_reaches_the_dense_minimiser(kind, method):
    cov = _precision_cov() if kind == "covariance" else None
    gen = LinearGaussianGenerator.random(S, 5, seed=0, cov=cov)
    for p in gen.parameters():
        p.requires_grad_(False)
    reg = CovarianceRegulariser(gen) if kind == "covariance" else MeanOnlyRegulariser(gen)
    Sig = cov.dense()[0] if cov is not None else torch.eye(N, dtype=torch.float64)
    A = SubsampledFourier(_mask())
    g = torch.Generator().manual_seed(1)
    u_true = gen.decode_mean(torch.randn(2, 5, generator=g, dtype=torch.float64))
    y = A(u_true)
    lam, sig = 0.3, 0.5
    # min_u |Au-y|^2/(2 sig^2) + lam/2 (u-b)^T (Sig + W W^T)^{-1} (u-b)
    P = torch.linalg.inv(Sig + gen.weight @ gen.weight.T)
    atb = A.adjoint(y).real.reshape(2, N)
    ref = torch.linalg.solve(_dense_normal(A) / sig**2 + lam * P,
                             (atb / sig**2).T + lam * (P @ gen.bias)[:, None]).T
    iters = 60 if method == "alternating" else 150
    options = GenerativeOptions(method=method, iterations=iters, z_steps=10, z_lr=0.05,
                                n_inits=2, cg_iterations=50)
    res = reconstruct_generative(A, y, reg, lam=lam, noise_std=sig, options=options)
    err = float((res.u.reshape(2, N) - ref).norm() / ref.norm())
    assert err < 1e-3, err
    # history of the alternating scheme is non-increasing (exact u-step, descent z-steps)
    if method == "alternating":
        h = np.array(res.history)
        assert np.all(np.diff(h) <= 1e-6 * np.abs(h[:-1]) + 1e-9)


def test_best_of_several_initialisations_is_kept():
    gen = LinearGaussianGenerator.random(S, 5, seed=0)
    for p in gen.parameters():
        p.requires_grad_(False)
    reg = RangeConstraint(gen, latent_weight=1.0)
    A = SubsampledFourier(_mask())
    y = A(gen.decode_mean(torch.randn(3, 5, dtype=torch.float64,
                                      generator=torch.Generator().manual_seed(4))))
    kw = dict(iterations=4, z_steps=3, z_lr=0.05, seed=3)
    one = reconstruct_generative(A, y, reg, 0.1, 0.1, GenerativeOptions(n_inits=1, **kw))
    many = reconstruct_generative(A, y, reg, 0.1, 0.1, GenerativeOptions(n_inits=4, **kw))
    assert bool((many.objective <= one.objective + 1e-9).all())
    # the range constraint returns an image in the range of G
    assert torch.allclose(many.u, gen.decode_mean(many.z))
    obj = data_fidelity(A, many.u, y, 0.1) + 0.1 * 0.5 * many.z.pow(2).sum(1)
    assert torch.allclose(obj, many.objective)


def _pca_generator(slices, size=16, dim=24, n=400):
    """A fixed linear-Gaussian generative model of brain slices: PCA of augmented slices,
    G(z) = b + U_d diag(s_d) z / sqrt(n), Sigma = (residual variance) I."""
    from spinv.generative.train import SliceSampler

    sampler = SliceSampler(slices, size)
    X = sampler.sample(n, torch.Generator().manual_seed(0)).reshape(n, -1).double()
    b = X.mean(0)
    U, s, _ = torch.linalg.svd((X - b).T, full_matrices=False)
    W = U[:, :dim] * s[:dim] / np.sqrt(n)
    tau = float(s[dim:].pow(2).sum() / n / (size * size))
    cov = ScaledIdentity(torch.tensor(np.log(tau), dtype=torch.float64), (1, 1, size, size))
    gen = LinearGaussianGenerator(W, b, size, cov=cov)
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen


def test_reconstruction_beats_zero_filling_on_brain_slices():
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices
    from spinv.metrics import psnr

    size = 16
    slices = load_dataset("brain-t1", "train")
    # the prior is fitted on even slices and tested on held-out odd ones (same anatomy range)
    gen = _pca_generator(slices[::2], size)
    x = prepare_slices(slices[1::20], size).double()
    A = SubsampledFourier(make_mask("variable-density", (size, size), 0.25, seed=0).double())
    sigma = 0.02
    y = A.measure(x, sigma=sigma, seed=1)
    zf = psnr(A.adjoint(y).real, x, data_range=1.0)
    cases = {  # (regulariser, weight, required mean PSNR gain in dB)
        "covariance": (CovarianceRegulariser(gen, logdet_weight=0.5), 1.0, 3.0),
        "mean": (MeanOnlyRegulariser(gen), 1.0 / float(gen.cov.log_gamma.exp()), 1.0),
        "range": (RangeConstraint(gen), 1.0, 3.0),
    }
    options = GenerativeOptions(iterations=15, z_steps=10, z_lr=0.1, n_inits=2)
    for name, (reg, lam, need) in cases.items():
        res = reconstruct_generative(A, y, reg, lam=lam, noise_std=sigma, options=options)
        gain = psnr(res.u, x, data_range=1.0) - zf
        assert float(gain.mean()) > need, (name, gain)


def test_bad_arguments():
    gen = LinearGaussianGenerator.random(S, 3)
    A = SubsampledFourier(_mask())
    y = A(torch.zeros(1, 1, S, S))
    reg = MeanOnlyRegulariser(gen)
    with pytest.raises(ValueError, match="method"):
        GenerativeOptions(method="admm")
    with pytest.raises(ValueError, match="lam"):
        reconstruct_generative(A, y, reg, lam=0.0)
    for bad in (dict(n_inits=0), dict(iterations=0), dict(z_steps=0), dict(z_lr=0.0),
                dict(u_lr=-1.0), dict(cg_iterations=-1), dict(seed=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GenerativeOptions(**bad)
    with pytest.raises(TypeError, match="GenerativeOptions"):
        reconstruct_generative(A, y, reg, options={"iterations": 3})
    with pytest.raises(TypeError, match="GenerativeRegulariser"):
        reconstruct_generative(A, y, gen)
