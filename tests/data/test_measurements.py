"""Readers of users' measurement files: fastMRI k-space against the fastMRI reference convention,
raw sinograms checked against their geometry, spinv's own .npz, and read-only access."""

import hashlib
import json

import h5py
import numpy as np
import pytest
import torch

from spinv.data.measurements import (
    SinogramGeometry,
    center_crop,
    read_fastmri_kspace,
    read_measurements,
    read_sinogram,
)
from spinv.operators import SubsampledFourier

HEADER = (b"<ismrmrdHeader><encoding><encodedSpace><matrixSize><x>16</x><y>12</y></matrixSize>"
          b"</encodedSpace><reconSpace><matrixSize><x>8</x><y>6</y><z>1</z></matrixSize>"
          b"</reconSpace></encoding></ismrmrdHeader>")


def _fft2c(x: np.ndarray) -> np.ndarray:  # the fastMRI reference forward transform
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _ifft2c(k: np.ndarray) -> np.ndarray:  # fastMRI's ifft2c
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _write_fastmri(path, kspace, mask=None, header=HEADER):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        if header is not None:
            f.create_dataset("ismrmrd_header", data=header)


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 16, 12)) + 1j * rng.standard_normal((2, 16, 12))).astype(
        np.complex64)


def test_fully_sampled_fastmri_kspace_gives_back_the_image(tmp_path, volume):
    path = tmp_path / "file.h5"
    _write_fastmri(path, _fft2c(volume))
    m = read_fastmri_kspace(path)
    assert m.kind == "mri" and m.crop == (8, 6) and m.mask is None and len(m) == 2
    rec = SubsampledFourier(torch.ones(16, 12)).adjoint(m.y) * m.scale
    assert torch.allclose(rec[:, 0], torch.from_numpy(volume), atol=1e-5)
    # the scale brings the cropped zero-filled magnitude to a maximum of 1
    assert abs(float(center_crop(rec / m.scale, m.crop).abs().max()) - 1) < 1e-5


def test_masked_fastmri_zero_filling_matches_the_reference_code(tmp_path, volume):
    mask = np.zeros(12, np.float32)
    mask[[0, 4, 5, 6, 7, 10]] = 1
    k = _fft2c(volume) * mask  # challenge files store zero-filled k-space and the mask
    path = tmp_path / "file.h5"
    _write_fastmri(path, k, mask=mask)
    m = read_fastmri_kspace(path)
    assert torch.equal(m.mask, torch.from_numpy(mask).expand(16, 12))
    ours = center_crop(SubsampledFourier(m.mask).adjoint(m.y) * m.scale, m.crop).abs()[:, 0]
    reference = np.abs(_ifft2c(k))[..., 4:12, 3:9]  # fastMRI: ifft2c, then centre crop
    assert np.allclose(ours.numpy(), reference, atol=1e-5)


def test_fastmri_errors_name_the_file_and_the_fix(tmp_path, volume):
    multi = tmp_path / "multi.h5"
    _write_fastmri(multi, np.stack([_fft2c(volume)] * 3, axis=1))
    assert read_fastmri_kspace(multi).y.shape[1] == 3  # multi-coil: tests/data/test_multicoil.py
    real = tmp_path / "real.h5"
    _write_fastmri(real, np.abs(volume))
    with pytest.raises(ValueError, match="real.h5.*complex"):
        read_fastmri_kspace(real)
    path = tmp_path / "file.h5"
    _write_fastmri(path, _fft2c(volume))
    with pytest.raises(ValueError, match="--mask"):
        read_fastmri_kspace(path, mask=np.ones(5))
    with pytest.raises(FileNotFoundError, match="--measurements"):
        read_fastmri_kspace(tmp_path / "missing.h5")


def test_raw_sinograms_are_stacked_and_checked_against_the_geometry(tmp_path):
    folder = tmp_path / "sinos"
    folder.mkdir()
    np.save(folder / "a.npy", np.full((50, 91), 1.0, np.float32))
    np.save(folder / "b.npy", np.full((2, 50, 91), 2.0, np.float32))
    m = read_sinogram(folder, SinogramGeometry(n_angles=50, n_detectors=91))
    assert tuple(m.y.shape) == (3, 1, 50, 91) and m.names == ["a.npy", "b.npy[0]", "b.npy[1]"]
    assert m.y[0].eq(1).all() and m.y[1:].eq(2).all()
    with pytest.raises(ValueError, match="--angles 60 .*50 rows.*pass --angles 50"):
        read_sinogram(folder, SinogramGeometry(n_angles=60))
    with pytest.raises(ValueError, match="--detectors 90 .*91 columns"):
        read_sinogram(folder, SinogramGeometry(n_detectors=90))
    np.save(folder / "c.npy", np.zeros((40, 91), np.float32))
    with pytest.raises(ValueError, match="different shapes"):
        read_sinogram(folder, SinogramGeometry())


@pytest.mark.parametrize("array, message", [
    (np.full((4, 5), np.nan, np.float32), "NaN"),
    (np.zeros((4, 5), np.complex64), "real numbers"),
    (np.zeros((2, 3, 4, 5), np.float32), "expected"),
])
def test_bad_sinograms_are_refused(tmp_path, array, message):
    path = tmp_path / "s.npy"
    np.save(path, array)
    with pytest.raises(ValueError, match=message):
        read_sinogram(path, SinogramGeometry())


def test_npz_with_several_arrays_needs_a_sinogram_key(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, a=np.zeros((4, 5)), b=np.zeros((4, 5)))
    with pytest.raises(ValueError, match="'sinogram'"):
        read_sinogram(path, SinogramGeometry())
    np.savez(path, sinogram=np.ones((4, 5)), other=np.zeros(3))
    assert read_sinogram(path, SinogramGeometry()).y.eq(1).all()


def test_spinv_npz_carries_its_problem_and_dispatch_reads_every_kind(tmp_path, volume):
    problem = {"kind": "ct", "image_size": 8, "n_angles": 4}
    path = tmp_path / "sim.npz"
    np.savez(path, y=np.ones((1, 1, 4, 12), np.float32), problem=json.dumps(problem),
             ground_truth=np.zeros((1, 1, 8, 8), np.float32))
    m = read_measurements(path)
    assert m.problem == problem and m.kind == "ct" and m.ground_truth.shape == (1, 1, 8, 8)
    np.save(tmp_path / "raw.npy", np.zeros((4, 12), np.float32))
    assert read_measurements(tmp_path / "raw.npy").problem is None
    _write_fastmri(tmp_path / "k.h5", _fft2c(volume))
    assert read_measurements(tmp_path / "k.h5").kind == "mri"


def test_readers_never_modify_the_users_files(tmp_path, volume):
    paths = [tmp_path / "k.h5", tmp_path / "raw.npy"]
    _write_fastmri(paths[0], _fft2c(volume))
    np.save(paths[1], np.zeros((4, 12), np.float32))
    before = {p: (_digest(p), p.stat().st_mtime_ns) for p in paths}
    for p in paths:
        read_measurements(p)
    assert {p: (_digest(p), p.stat().st_mtime_ns) for p in paths} == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["k.h5", "raw.npy"]
