"""fastMRI multi-coil k-space: the reader against the fastMRI reference convention (ifft2c per
coil, RSS, centre crop), masks, stored references, and ESPIRiT per slice."""

import h5py
import numpy as np
import pytest
import torch

from spinv.data.measurements import center_crop, read_fastmri_kspace, read_measurements
from spinv.data.multicoil import estimate_sensitivities
from spinv.operators.coil_sensitivities import birdcage_maps
from spinv.operators.mri_multicoil import MultiCoilFourier

HEADER = (b"<ismrmrdHeader><encoding><reconSpace><matrixSize><x>24</x><y>20</y><z>1</z>"
          b"</matrixSize></reconSpace></encoding></ismrmrdHeader>")


def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


@pytest.fixture
def volume():
    """Two smooth complex 32 x 28 slices seen by 4 birdcage coils: (2, 4, 32, 28) coil images."""
    yy, xx = np.mgrid[:32, :28]
    blob = np.exp(-((yy - 16) ** 2 / 60 + (xx - 14) ** 2 / 40))
    u = np.stack([blob * np.exp(1j * xx / 9), 0.5 * blob]).astype(np.complex64)
    maps = birdcage_maps(4, (32, 28)).numpy()
    return u, u[:, None] * maps[None]


def _write(path, kspace, mask=None, rss=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace.astype(np.complex64))
        f.create_dataset("ismrmrd_header", data=HEADER)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        if rss is not None:
            f.create_dataset("reconstruction_rss", data=rss.astype(np.float32))


def test_reader_matches_fastmri_rss(tmp_path, volume):
    u, coils = volume
    mask = np.zeros(28, np.float32)
    mask[[0, 5, 10, 12, 13, 14, 15, 16, 20, 25]] = 1
    k = _fft2c(coils) * mask
    rss = np.sqrt((np.abs(_ifft2c(_fft2c(coils))) ** 2).sum(1))[..., 4:28, 4:24]
    _write(tmp_path / "mc.h5", k, mask, rss)
    m = read_measurements(tmp_path / "mc.h5")
    assert m.y.shape == (2, 4, 32, 28) and m.kind == "mri" and m.crop == (24, 20)
    assert torch.equal(m.mask, torch.from_numpy(mask).expand(32, 28))
    A = MultiCoilFourier(m.mask, torch.ones(4, 32, 28))
    ours = center_crop(A.rss(m.y) * m.scale, m.crop)[:, 0].numpy()
    reference = np.sqrt((np.abs(_ifft2c(k)) ** 2).sum(1))[..., 4:28, 4:24]
    assert np.allclose(ours, reference, atol=1e-5)
    assert abs(float(center_crop(A.rss(m.y), m.crop).max()) - 1) < 1e-5
    assert torch.allclose(m.ground_truth[:, 0], torch.from_numpy(rss))
    # fully sampled: SENSE with the true maps recovers the image (in spinv's frame)
    B = MultiCoilFourier(torch.ones(32, 28), birdcage_maps(4, (32, 28)))
    _write(tmp_path / "f.h5", _fft2c(coils))
    full = read_fastmri_kspace(tmp_path / "f.h5")
    assert np.allclose((B.sense_combine(full.y) * full.scale)[:, 0].numpy(), u, atol=1e-5)


def test_reader_refuses_bad_files(tmp_path, volume):
    _, coils = volume
    _write(tmp_path / "nan.h5", np.full(coils.shape, np.nan, np.complex64))
    with pytest.raises(ValueError, match="nan.h5.*NaN"):
        read_fastmri_kspace(tmp_path / "nan.h5")
    _write(tmp_path / "m.h5", _fft2c(coils))
    with pytest.raises(ValueError, match="--mask"):
        read_fastmri_kspace(tmp_path / "m.h5", mask=np.ones(5))


def test_estimate_sensitivities_per_slice(volume):
    _, coils = volume
    y = torch.from_numpy(np.fft.fftshift(np.fft.fft2(coils, norm="ortho"), axes=(-2, -1)))
    maps = estimate_sensitivities(y.to(torch.complex64), None, calibration=12)
    assert maps.shape == (2, 4, 32, 28)
    with pytest.raises(ValueError, match="--calibration 40"):
        mask = torch.zeros(32, 28)
        mask[:, 12:16] = 1
        estimate_sensitivities(y, mask, calibration=40)
