"""Tests for the multi-coil (SENSE) Fourier operator: adjointness, norm, reduction to the
single-coil operator, analytic reconstructions and per-coil noise."""

import math

import pytest
import torch

from spinv.linalg import power_iteration
from spinv.operators import SubsampledFourier
from spinv.operators.coil_sensitivities import birdcage_maps
from spinv.operators.mri_multicoil import MultiCoilFourier


def _mask(shape, rate=0.4, seed=0, weighted=False):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(shape, generator=g) < rate).float()
    return m * torch.rand(shape, generator=g) if weighted else m


def _random_maps(n, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, dtype=torch.complex64, generator=g)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (16, 15), (32, 32)])
@pytest.mark.parametrize("coils", [1, 3, 8])
@pytest.mark.parametrize("weighted", [False, True])
def test_adjointness(shape, coils, weighted):
    A = MultiCoilFourier(_mask(shape, weighted=weighted), _random_maps(coils, shape))
    for seed in range(2):
        assert A.adjoint_test((2, 1, *shape), seed=seed) <= 1e-5


def test_adjointness_float64_and_shapes():
    A = MultiCoilFourier(_mask((12, 10)), _random_maps(4, (12, 10)).to(torch.complex128))
    x = torch.randn(2, 1, 12, 10, dtype=torch.complex128)
    y = torch.randn(2, 4, 12, 10, dtype=torch.complex128)
    assert A(x).shape == (2, 4, 12, 10) and A.adjoint(y).shape == (2, 1, 12, 10)
    lhs = torch.vdot(A(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), A.adjoint(y).flatten())
    assert abs(complex(lhs - rhs)) <= 1e-12 * float(A(x).norm() * y.norm())


@pytest.mark.parametrize("shape,coils", [((16, 16), 4), ((24, 20), 8)])
def test_norm_power_iteration_and_bound(shape, coils):
    maps = _random_maps(coils, shape, seed=1)
    A = MultiCoilFourier(_mask(shape, rate=0.5, seed=2), maps)
    n = A.norm(iterations=500, tol=1e-10)
    x = torch.randn(1, 1, *shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(5))
    ref = power_iteration(lambda v: A.adjoint(A(v)), x, iterations=500, tol=1e-10).value
    assert n == pytest.approx(ref, rel=1e-3)
    assert n <= A.norm_bound() * (1 + 1e-5)
    # full sampling: A*A is multiplication by sum_c |C_c|^2, so the bound is attained
    full = MultiCoilFourier(torch.ones(shape), maps)
    assert full.norm(iterations=2000, tol=1e-12) == pytest.approx(full.norm_bound(), rel=1e-3)


def test_normal_matches_adjoint_of_forward():
    shape = (12, 14)
    A = MultiCoilFourier(_mask(shape, weighted=True), _random_maps(3, shape))
    x = torch.randn(2, 1, *shape, dtype=torch.complex64)
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8), (9, 7)])
def test_one_coil_of_ones_is_subsampled_fourier(shape):
    mask = _mask(shape, weighted=True)
    A = MultiCoilFourier(mask, torch.ones(1, *shape))
    B = SubsampledFourier(mask)
    x = torch.randn(2, 1, *shape, dtype=torch.complex64)
    y = torch.randn(2, 1, *shape, dtype=torch.complex64)
    assert torch.allclose(A(x), B(x), atol=1e-6)
    assert torch.allclose(A.adjoint(y), B.adjoint(y), atol=1e-6)
    assert A.norm() == pytest.approx(B.norm(), rel=1e-4)


def test_fully_sampled_analytic_recovers_image():
    """Birdcage maps have sum_c |C_c|^2 = 1, so with full sampling RSS = |u| and the SENSE
    combination is u itself; analytic() has the RSS magnitude and the combination's phase."""
    shape = (20, 18)
    maps = birdcage_maps(6, shape)
    u = torch.randn(1, 1, *shape, dtype=torch.complex64)
    A = MultiCoilFourier(torch.ones(shape), maps)
    y = A(u)
    assert torch.allclose(A.rss(y), u.abs(), atol=1e-5)
    assert torch.allclose(A.sense_combine(y), u, atol=1e-5)
    assert torch.allclose(A.analytic(y), u, atol=1e-5)
    assert A.analytic_name == "rss"


def test_analytic_magnitude_is_rss_under_subsampling():
    shape = (16, 16)
    A = MultiCoilFourier(_mask(shape), birdcage_maps(4, shape))
    y = A(torch.randn(1, 1, *shape, dtype=torch.complex64))
    assert torch.allclose(A.analytic(y).abs(), A.rss(y), atol=1e-6)
    coil = A.coil_images(y)
    assert torch.allclose(A.rss(y), coil.abs().pow(2).sum(1, keepdim=True).sqrt())


def test_per_coil_noise_level_and_mask():
    shape = (64, 64)
    mask = _mask(shape, rate=0.5)
    A = MultiCoilFourier(mask, birdcage_maps(4, shape))
    x = torch.zeros(1, 1, *shape)
    y = A.measure(x, sigma=0.3, seed=0)
    assert y.shape == (1, 4, 64, 64)
    sampled = y[..., mask > 0]
    assert float(sampled.abs().pow(2).mean()) == pytest.approx(0.09, rel=0.05)
    assert float(y[..., mask == 0].abs().max()) == 0.0
    assert torch.equal(A.measure(x, sigma=0.3, seed=0), y)


def test_bad_inputs():
    with pytest.raises(ValueError, match="sensitivities have image shape"):
        MultiCoilFourier(torch.ones(8, 8), torch.ones(2, 8, 9))
    with pytest.raises(ValueError, match="sensitivities must have shape"):
        MultiCoilFourier(torch.ones(8, 8), torch.ones(8, 8))
    with pytest.raises(ValueError, match="finite"):
        MultiCoilFourier(torch.ones(8, 8), torch.full((2, 8, 8), math.nan))
    A = MultiCoilFourier(torch.ones(8, 8), torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match=r"y must have shape \(B, 2, 8, 8\)"):
        A.adjoint(torch.zeros(1, 3, 8, 8, dtype=torch.complex64))
