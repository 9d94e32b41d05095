"""Loaders for users' files, on small valid and corrupt files made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinv.data.io import (
    load_dicom_series,
    load_fastmri_h5,
    load_folder,
    load_images,
    load_nifti,
    save_image,
)


def _img(h=12, w=10, seed=0):
    return np.random.default_rng(seed).random((h, w)).astype(np.float32)


def test_png_and_npy_folder_roundtrip(tmp_path):
    a, b = _img(seed=1), _img(seed=2)
    save_image(tmp_path / "b.png", b)
    save_image(tmp_path / "a.npy", a)
    raw = load_folder(tmp_path)
    assert raw.shape == (2, 12, 10) and raw.dtype == np.float32
    np.testing.assert_array_equal(raw[0], a)  # sorted by name: a.npy first
    np.testing.assert_array_equal(raw[1], np.round(b * 255))  # raw PNG values
    x = load_images(tmp_path)
    assert x.min() == 0.0 and x.max() == 1.0  # stack min-max normalisation
    x = load_images(tmp_path, normalize="image")
    assert np.allclose(x.reshape(2, -1).max(1), 1) and np.allclose(x.reshape(2, -1).min(1), 0)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_rgb_png_and_tensor_input(tmp_path):
    import imageio.v3 as iio

    rgb = (np.random.default_rng(0).random((8, 9, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    x = load_images(tmp_path / "c.png", normalize="none")
    assert x.shape == (1, 8, 9) and 0 <= x.min() and x.max() <= 1  # rgb2gray
    save_image(tmp_path / "t.png", torch.rand(1, 1, 5, 6))
    assert load_images(tmp_path / "t.png").shape == (1, 5, 6)


def test_tiff_multipage(tmp_path):
    import tifffile

    stack = np.random.default_rng(0).random((3, 7, 8)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    np.testing.assert_allclose(load_images(tmp_path / "s.tif", normalize="none"), stack)


def _dicom(path, pixels, instance, z, slope=1.0, intercept=-1024.0):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [0.0, 0.0, float(z)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_series_rescale_and_order(tmp_path):
    rng = np.random.default_rng(0)
    slices = [rng.integers(0, 2000, (6, 5)) for _ in range(3)]
    # files named in the wrong order; positions say slice k is at z = 2.5 k
    for k, name in zip([2, 0, 1], ["a.dcm", "b.dcm", "c.dcm"], strict=True):
        _dicom(tmp_path / name, slices[k], instance=10 - k, z=2.5 * k, slope=2.0)
    x = load_dicom_series(tmp_path)
    assert x.shape == (3, 6, 5)
    for k in range(3):
        np.testing.assert_array_equal(x[k], slices[k] * 2.0 - 1024.0)
    y = load_images(tmp_path, window=(-1000, 1000))
    np.testing.assert_allclose(y, np.clip((x + 1000) / 2000, 0, 1), atol=1e-6)


def test_dicom_corrupt_file_names_file(tmp_path):
    (tmp_path / "bad.dcm").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=r"bad\.dcm"):
        load_images(tmp_path)


def test_nifti_axial_slices(tmp_path):
    import nibabel as nib

    vol = np.random.default_rng(0).random((5, 6, 4)).astype(np.float32)  # x, y, z in RAS
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    x = load_images(tmp_path / "v.nii.gz", normalize="none")
    assert x.shape == (4, 6, 5)
    np.testing.assert_allclose(x[2], np.rot90(vol[:, :, 2]))
    # an LPS-flipped affine gives the same RAS slices
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(vol[::-1, ::-1].copy(), flip), tmp_path / "w.nii")
    np.testing.assert_allclose(load_nifti(tmp_path / "w.nii"), x)


def test_nifti_corrupt(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match=r"bad\.nii\.gz"):
        load_images(tmp_path / "bad.nii.gz")


def test_fastmri_h5_rss_and_kspace(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    img = rng.random((2, 3, 8, 8)) * np.exp(1j * rng.random((2, 3, 8, 8)))  # (N, coils, H, W)
    k = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(img, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f["kspace"] = k.astype(np.complex64)
    rss = np.sqrt((np.abs(img) ** 2).sum(1))
    np.testing.assert_allclose(load_fastmri_h5(tmp_path / "k.h5"), rss, rtol=1e-4, atol=1e-5)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["kspace"] = k.astype(np.complex64)
        f["reconstruction_rss"] = np.ones((2, 4, 4), np.float32) * 3
    assert load_fastmri_h5(tmp_path / "r.h5").shape == (2, 4, 4)  # prefers the reconstruction
    assert load_fastmri_h5(tmp_path / "r.h5", key="kspace").shape == (2, 8, 8)


def test_hdf5_corrupt_or_missing_key(tmp_path):
    import h5py

    (tmp_path / "bad.h5").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.h5"):
        load_images(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5.*no dataset"):
        load_images(tmp_path / "other.h5")


def test_corrupt_png_and_npy(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"x\.png"):
        load_images(tmp_path / "x.png")
    np.save(tmp_path / "y.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"y\.npy.*shape"):
        load_images(tmp_path / "y.npy")
    np.save(tmp_path / "z.npy", np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"z\.npy.*NaN"):
        load_images(tmp_path / "z.npy")


def test_mismatched_sizes_and_missing(tmp_path):
    save_image(tmp_path / "a.npy", np.zeros((4, 4)))
    save_image(tmp_path / "b.npy", np.zeros((5, 4)))
    with pytest.raises(ValueError, match="different sizes"):
        load_images(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_images(tmp_path / "nope")
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "f.txt").write_text("hi")
        load_images(tmp_path / "f.txt")
    with pytest.raises(ValueError, match=r"\.png or \.npy"):
        save_image(tmp_path / "c.jpg", np.zeros((4, 4)))
