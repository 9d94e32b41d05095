"""Wavelet transform: agreement with PyWavelets' periodised DWT, orthogonality, errors."""

import numpy as np
import pytest
import pywt
import torch

from spinv.variational.wavelets import WaveletTransform, analysis_matrix


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("wavelet", ["db4", "haar", "db2", "sym4"])
@pytest.mark.parametrize("levels,shape", [(1, (16, 16)), (3, (32, 64)), (4, (64, 32))])
def test_matches_pywt_periodization(wavelet, levels, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1) + shape)
    W = WaveletTransform(levels=levels, wavelet=wavelet)
    c = W(torch.from_numpy(x)).numpy()
    for b in range(2):
        ref = pywt.wavedec2(x[b, 0], wavelet, mode="periodization", level=levels)
        arr, _ = pywt.coeffs_to_array(ref)
        np.testing.assert_allclose(c[b, 0], arr, atol=1e-12)


def test_orthogonality_float32_and_complex():
    W = WaveletTransform(levels=3, wavelet="db4")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 32, 32, generator=g)
    c = W(x)
    rel = (c.norm() - x.norm()).abs() / x.norm()
    assert rel < 1e-6
    assert torch.allclose(W.adjoint(c), x, atol=1e-5)
    z = torch.complex(
        torch.randn(1, 1, 16, 16, generator=g), torch.randn(1, 1, 16, 16, generator=g)
    )
    cz = W(z)
    assert cz.dtype == torch.complex64
    assert torch.allclose(cz.real, W(z.real), atol=1e-6)
    assert torch.allclose(W.adjoint(cz), z, atol=1e-5)
    assert W.adjoint_test((2, 1, 32, 32)) < 1e-6


def test_matrix_exactly_orthogonal_float64():
    M = analysis_matrix(64, "db4")
    assert np.abs(M @ M.T - np.eye(64)).max() < 1e-13


def test_bad_inputs():
    with pytest.raises(ValueError, match="levels"):
        WaveletTransform(levels=0)
    with pytest.raises(ValueError, match="wavelet"):
        WaveletTransform(wavelet="bior2.2")
    with pytest.raises(ValueError, match="divisible"):
        WaveletTransform(levels=3)(torch.zeros(1, 1, 20, 16))
