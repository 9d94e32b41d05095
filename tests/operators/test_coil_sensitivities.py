"""Tests for simulated birdcage coil maps, the calibration region and ESPIRiT estimation."""

import numpy as np
import pytest
import torch

from spinv.data.datasets import load_complex_sample
from spinv.operators.coil_sensitivities import (
    aligned_map_error,
    birdcage_maps,
    calibration_region,
    espirit_maps,
)
from spinv.operators.mri_multicoil import MultiCoilFourier
from spinv.operators.sampling import equispaced_lines


def test_birdcage_maps_are_normalised_smooth_and_distinct():
    maps = birdcage_maps(8, (48, 40))
    assert maps.shape == (8, 48, 40) and maps.dtype == torch.complex64
    assert torch.allclose(maps.abs().pow(2).sum(0), torch.ones(48, 40), atol=1e-5)
    # smooth: neighbouring pixels differ little (conductors are outside the image)
    assert float((maps[..., 1:] - maps[..., :-1]).abs().max()) < 0.1
    # each coil sees most of the image near its conductor: peaks at different places
    peaks = {int(m.abs().argmax()) for m in maps}
    assert len(peaks) == 8
    # rotating the image by 180 degrees maps coil c onto coil c + 4 (magnitudes)
    sq = birdcage_maps(8, 32).abs()
    rotated = sq[0].flip(0, 1).roll((1, 1), (0, 1))  # pixel i -> 32 - i about (16, 16)
    assert torch.allclose(rotated[1:, 1:], sq[4][1:, 1:], atol=1e-5)
    assert not torch.allclose(rotated[1:, 1:], sq[2][1:, 1:], atol=1e-2)


def test_birdcage_bad_arguments():
    with pytest.raises(ValueError, match="n_coils"):
        birdcage_maps(0, 8)
    with pytest.raises(ValueError, match="radius"):
        birdcage_maps(4, 8, radius=0.5)


def test_calibration_region_of_line_mask():
    mask = equispaced_lines((216, 180), 0.25, seed=0, centre_fraction=0.08)
    rows, cols = calibration_region(mask)
    assert cols.stop - cols.start == 14 and rows.stop - rows.start == 96
    assert bool(mask[rows, cols].all())
    rows, cols = calibration_region(mask, width=10)
    assert cols.stop - cols.start == 10
    with pytest.raises(ValueError, match="width=40"):
        calibration_region(mask, width=40)
    with pytest.raises(ValueError, match="not fully sampled"):
        calibration_region(torch.zeros(16, 16))


@pytest.mark.parametrize("sigma", [0.0, 0.01])
def test_espirit_reproduces_birdcage_maps_on_brain_slice(sigma):
    """ESPIRiT on the bundled complex brain slice (cropped to 216 x 180), 8 birdcage coils, 4x
    equispaced lines with 14 ACS lines: inside the object (|u| > 10 % of its maximum) the
    estimated maps equal the true ones up to the pixelwise common phase within 5 % (measured:
    1.6 % noiseless and at sigma 0.01, kernel 5 x 5 from 14 lines), and are kept (not cropped)
    on > 99 % of it."""
    u = torch.from_numpy(load_complex_sample()[:216, :180])
    maps = birdcage_maps(8, (216, 180))
    mask = equispaced_lines((216, 180), 0.25, seed=0, centre_fraction=0.08)
    y = MultiCoilFourier(mask, maps).measure(u[None, None], sigma=sigma, seed=0)
    est = espirit_maps(y[0], calibration_region(mask))
    inside = u.abs() > 0.1 * u.abs().max()
    assert aligned_map_error(est, maps, inside) < 0.05
    assert float((est.abs().pow(2).sum(0) > 0.5)[inside].float().mean()) > 0.99
    # a wrong model (mirrored or conjugated maps) is far off: the test can fail
    assert aligned_map_error(est.flip(-1, -2), maps, inside) > 0.5
    assert aligned_map_error(est.conj(), maps, inside) > 0.5
    # the SENSE image with estimated maps has the true magnitude (full data, no noise)
    if sigma == 0.0:
        full = MultiCoilFourier(torch.ones(216, 180), maps)(u[None, None])
        back = MultiCoilFourier(torch.ones(216, 180), est).sense_combine(full)[0, 0]
        rel = (back.abs() - u.abs())[inside].norm() / u.abs()[inside].norm()
        assert float(rel) < 0.05


def test_narrow_calibration_uses_a_smaller_kernel():
    """8 ACS lines: the automatic 3 x 3 kernel keeps the maps within 10 % (measured 5.2 %); a
    fixed 6 x 6 kernel leaves too few kernel positions per row and fails (measured 83 %)."""
    u = torch.from_numpy(load_complex_sample()[:216, 2:178])
    maps = birdcage_maps(8, (216, 176))
    mask = equispaced_lines((216, 176), 0.25, seed=0, centre_fraction=0.08)
    y = MultiCoilFourier(mask, maps).measure(u[None, None], sigma=0.01, seed=0)[0]
    region = calibration_region(mask, width=8)
    inside = u.abs() > 0.1 * u.abs().max()
    assert aligned_map_error(espirit_maps(y, region), maps, inside) < 0.1
    assert aligned_map_error(espirit_maps(y, region, kernel=6), maps, inside) > 0.5


def test_espirit_bad_input():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        espirit_maps(np.zeros((2, 16, 16), np.complex64), (slice(7, 9), slice(7, 9)))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        espirit_maps(np.zeros((2, 16, 16), np.complex64), (slice(6, 10), slice(6, 10)), kernel=6)


def test_image_space_matrices_equal_the_full_size_sum():
    """The exact Fourier interpolation of W(x) from a 2k x 2k grid equals the direct sum of
    v_j v_j^H over full-size inverse DFTs of the kernels (random kernels, odd and even sizes)."""
    from spinv.operators.coil_sensitivities import _image_space_matrices

    g = np.random.default_rng(0)
    kernels = g.standard_normal((5, 3, 4, 4)) + 1j * g.standard_normal((5, 3, 4, 4))
    for h, w in ((13, 10), (16, 16)):
        pad = np.zeros((5, 3, h, w), complex)
        pad[..., 1:5, 2:6] = kernels  # any placement: a common phase ramp
        v = np.fft.ifft2(pad) * h * w  # sum_m k[m] e^{+2 pi i m x / N}
        direct = np.einsum("nchw,ndhw->hwcd", v, v.conj()).reshape(h * w, 3, 3) / 16
        fast = _image_space_matrices(kernels, (h, w), chunk=2).numpy()
        assert np.allclose(fast, direct, atol=1e-5 * np.abs(direct).max())
