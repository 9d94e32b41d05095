"""Tests for the subsampled Fourier operator, its helpers and the complex Gaussian noise."""

import numpy as np
import pytest
import torch

from spinv.operators import SubsampledFourier, channels_to_complex, complex_to_channels
from spinv.operators.noise import complex_gaussian_noise


def _mask(shape, rate=0.4, seed=0, weighted=False):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(shape, generator=g) < rate).float()
    if weighted:
        m = m * torch.rand(shape, generator=g)
    return m


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (16, 15), (33, 32)])
@pytest.mark.parametrize("weighted", [False, True])
def test_adjointness(shape, weighted):
    A = SubsampledFourier(_mask(shape, weighted=weighted))
    for seed in range(3):
        assert A.adjoint_test((3, 1, *shape), seed=seed) <= 1e-5


def test_adjointness_float64():
    A = SubsampledFourier(_mask((12, 10)))
    x = torch.randn(2, 1, 12, 10, dtype=torch.complex128)
    y = torch.randn(2, 1, 12, 10, dtype=torch.complex128)
    lhs = torch.vdot(A(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), A.adjoint(y).flatten())
    assert A(x).dtype == torch.complex128
    assert abs(complex(lhs - rhs)) <= 1e-12 * float(A(x).norm() * y.norm())


@pytest.mark.parametrize("shape", [(8, 8), (9, 7)])
def test_dc_at_centre_and_matches_numpy(shape):
    A = SubsampledFourier(torch.ones(shape))
    x = torch.randn(1, 1, *shape, dtype=torch.complex64)
    ref = np.fft.fftshift(np.fft.fft2(x[0, 0].numpy(), norm="ortho"))
    assert np.allclose(A(x)[0, 0].numpy(), ref, atol=1e-5)
    const = torch.ones(1, 1, *shape)
    k = A(const)[0, 0]
    h, w = shape
    assert abs(float(k[h // 2, w // 2].real) - (h * w) ** 0.5) < 1e-4
    k[h // 2, w // 2] = 0
    assert float(k.abs().max()) < 1e-4


def test_full_mask_is_unitary_and_zero_filled_is_adjoint():
    A = SubsampledFourier(torch.ones(10, 12))
    x = torch.randn(2, 1, 10, 12)  # real input is promoted
    y = A(x)
    assert y.dtype == torch.complex64
    assert torch.allclose(A.zero_filled(y).real, x, atol=1e-5)
    assert torch.allclose(A.zero_filled(y), A.adjoint(y))
    assert float(A.zero_filled(y).imag.abs().max()) < 1e-5


def test_zero_where_unsampled_and_norm():
    m = _mask((16, 16), weighted=True)
    A = SubsampledFourier(m)
    y = A(torch.randn(2, 1, 16, 16, dtype=torch.complex64))
    assert float(y[..., m == 0].abs().max()) == 0.0
    # ||A|| = max_i s_i for a diagonal weight after a unitary map
    assert abs(A.norm(iterations=500, tol=1e-10) - float(m.max())) < 5e-3
    one = y.new_ones(1, 1, 16, 16)
    assert torch.allclose(A.normal(one), A.adjoint(A(one)), atol=1e-6)


def test_learned_weights_stay_differentiable():
    w = torch.full((8, 8), 0.5, requires_grad=True)
    A = SubsampledFourier(w)
    x = torch.randn(1, 1, 8, 8, dtype=torch.complex64)
    A(x).abs().pow(2).sum().backward()
    # d/ds_i sum s_i^2 |Fx|_i^2 = 2 s_i |Fx|_i^2
    fx = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho")).abs().pow(2)[0, 0]
    assert torch.allclose(w.grad, 2 * 0.5 * fx, atol=1e-5)


@pytest.mark.parametrize(
    "bad, exc",
    [
        (torch.full((4, 4), 1.5), ValueError),
        (-torch.ones(4, 4), ValueError),
        (torch.ones(4), ValueError),
        (torch.full((4, 4), float("nan")), ValueError),
        ([[1.0]], TypeError),
        (torch.ones(4, 4, dtype=torch.complex64), TypeError),
    ],
)
def test_bad_masks(bad, exc):
    with pytest.raises(exc, match="mask"):
        SubsampledFourier(bad)


def test_bad_input_shape_and_numpy_mask():
    A = SubsampledFourier(np.ones((6, 6), dtype=bool))
    assert A.mask.dtype == torch.float32
    with pytest.raises(ValueError, match="x must have shape"):
        A(torch.zeros(1, 1, 6, 5))
    with pytest.raises(ValueError, match="y must have shape"):
        A.adjoint(torch.zeros(6, 6))


def test_channels_roundtrip():
    z = torch.randn(3, 1, 5, 4, dtype=torch.complex64)
    c = complex_to_channels(z)
    assert c.shape == (3, 2, 5, 4) and c.dtype == torch.float32
    assert torch.equal(channels_to_complex(c), z)
    with pytest.raises(ValueError):
        complex_to_channels(torch.zeros(1, 2, 3, 3, dtype=torch.complex64))
    with pytest.raises(ValueError):
        channels_to_complex(torch.zeros(1, 3, 3, 3))


def test_complex_noise_statistics_and_masking():
    m = _mask((64, 64), rate=0.5)
    y = torch.zeros(4, 1, 64, 64, dtype=torch.complex64)
    n = complex_gaussian_noise(y, 0.3, mask=m, seed=1)
    sampled = n[..., m > 0]
    assert float(n[..., m == 0].abs().max()) == 0.0
    # E|eta|^2 = sigma^2, real and imaginary parts each sigma^2/2, uncorrelated
    assert abs(float(sampled.abs().pow(2).mean()) - 0.09) < 0.09 * 0.05
    assert abs(float(sampled.real.var()) - 0.045) < 0.045 * 0.06
    assert abs(float((sampled.real * sampled.imag).mean())) < 0.003
    # reproducible per seed, different across seeds
    assert torch.equal(n, complex_gaussian_noise(y, 0.3, mask=m, seed=1))
    assert not torch.equal(n, complex_gaussian_noise(y, 0.3, mask=m, seed=2))


def test_measure_uses_operator_sigma():
    m = _mask((16, 16))
    A = SubsampledFourier(m, noise_sigma=0.1)
    x = torch.randn(1, 1, 16, 16, dtype=torch.complex64)
    y = A.measure(x, seed=0)
    assert torch.equal(y, complex_gaussian_noise(A(x), 0.1, mask=m, seed=0))
    assert torch.equal(A.measure(x, sigma=0.0), A(x))
    with pytest.raises(ValueError, match="noise_sigma"):
        SubsampledFourier(m, noise_sigma=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        complex_gaussian_noise(y, -0.1)


def test_module_conversions_keep_operator_valid():
    m = _mask((10, 10), weighted=True)
    A = SubsampledFourier(m).to(torch.float64)  # buffers follow .to(); inputs keep their dtype
    x = torch.randn(1, 1, 10, 10, dtype=torch.complex64)
    assert A(x).dtype == torch.complex64
    assert A.state_dict() == {} or len(A.state_dict()) == 0  # the mask is not a parameter
    assert A.adjoint_test((2, 1, 10, 10)) < 1e-5
    assert A.norm() > 0  # image_shape known: no shape needed
