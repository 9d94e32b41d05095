"""Loaders for users' own images, and an atomic image writer.

Each specific loader returns the *raw* values as float32 ``(N, H, W)``:

* :func:`load_folder` -- a folder of PNG / TIFF / JPEG / NPY files (sorted by name; RGB(A) turned
  to gray with ``skimage.color.rgb2gray``; multi-page TIFF and 3-D NPY give several slices).
* :func:`load_dicom_series` -- a DICOM series (``pydicom``); ``RescaleSlope``/``RescaleIntercept``
  applied (CT: Hounsfield units); slices sorted by their position along the slice normal
  (``ImagePositionPatient`` . (row x column direction of ``ImageOrientationPatient``)), else by
  ``InstanceNumber``, else by file name.
* :func:`load_nifti` -- NIfTI (``nibabel``), reoriented to RAS (``as_closest_canonical``); axial
  slices ``vol[:, :, k]`` rotated so that anterior is up (as the bundled ``brain-t1``).
* :func:`load_fastmri_h5` -- fastMRI-style HDF5 (``h5py``): ``reconstruction_rss`` or
  ``reconstruction_esc`` if present, else ``kspace`` ((N, coils, H, W) or (N, H, W), complex)
  turned into images by the centred orthonormal inverse DFT and the root-sum-of-squares over coils.

:func:`load_images` dispatches on what it finds (a file by its suffix; a folder of DICOM files,
of NIfTI/HDF5 files, or of plain images) and normalises the stack to [0, 1]:

* ``normalize="stack"`` (default): ``(x - min) / (max - min)`` over the *whole stack*, which keeps
  the relative intensities of the slices;
* ``normalize="image"``: the same per slice;
* ``window=(lo, hi)``: clip to the window and map it linearly, e.g. ``(-1000, 1000)`` HU for CT;
* ``normalize="none"``: raw values (float32).

A file that cannot be read raises ``ValueError`` naming the file and the reason.

>>> import numpy as np, tempfile, os
>>> d = tempfile.mkdtemp()
>>> save_image(os.path.join(d, "a.npy"), np.arange(12.0).reshape(3, 4))
>>> load_images(d).shape, float(load_images(d).max())
((1, 3, 4), 1.0)
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from spinv.atomic import atomic_write_bytes

__all__ = [
    "load_images",
    "load_folder",
    "load_image_file",
    "load_dicom_series",
    "load_nifti",
    "load_fastmri_h5",
    "save_image",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
HDF5_SUFFIXES = (".h5", ".hdf5")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _bad(path: Path, reason: object) -> ValueError:
    return ValueError(f"cannot read {str(path)!r}: {reason}")


def _to_gray_stack(arr: np.ndarray, path: Path, colour: bool | None = None) -> np.ndarray:
    """2-D -> (1,H,W); (H,W,3|4) RGB(A) -> gray; (N,H,W) kept; float32.

    ``colour=True``: a 3-D array is one colour image (decoders that never return stacks, e.g.
    PNG, so a 4x64 RGB PNG is not taken for 4 slices); ``None``: guessed from the shape (NPY,
    TIFF: last axis 3 or 4 and more than 4 rows)."""
    from skimage.color import rgb2gray, rgba2rgb

    a = np.asarray(arr)
    if np.iscomplexobj(a):
        a = np.abs(a)
    if a.dtype == bool:
        a = a.astype(np.float32)
    is_colour = (a.ndim == 3 and a.shape[-1] in (3, 4)
                 and (colour if colour is not None else a.shape[0] > 4))
    if colour and a.ndim == 3 and a.shape[-1] not in (3, 4):
        raise _bad(path, f"a colour image must have 3 or 4 channels, got shape {a.shape}")
    if is_colour:
        if a.dtype.kind in "ui":
            a = a.astype(np.float64) / np.iinfo(a.dtype).max
        if a.shape[-1] == 4:
            a = rgba2rgb(a)
        a = rgb2gray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise _bad(path, f"expected a 2-D image or a stack (N, H, W), got shape {a.shape}")
    if a.size == 0:
        raise _bad(path, f"holds no pixels (shape {a.shape})")
    if a.dtype.kind not in "uif":
        raise _bad(path, f"unsupported data type {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise _bad(path, "contains NaN or infinite values")
    return a


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    """One PNG/TIFF/JPEG/BMP/NPY file as raw float32 ``(N, H, W)``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    suf = _suffix(p)
    try:
        if suf == ".npy":
            from spinv.data.npy import read_npy

            arr = read_npy(p)
        elif suf in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(p)
        elif suf in IMAGE_SUFFIXES:
            import imageio.v3 as iio

            arr = iio.imread(p, plugin="pillow")
            if arr.ndim == 3 and arr.shape[-1] == 2:  # gray + alpha
                arr = arr[..., 0]
            return _to_gray_stack(arr, p, colour=arr.ndim == 3)
        else:
            raise _bad(p, f"unsupported suffix {suf!r}; expected one of {IMAGE_SUFFIXES}")
    except ValueError as err:
        if str(err).startswith(("cannot read", repr(str(p)))):
            raise
        raise _bad(p, err) from err
    except Exception as err:  # decoder errors come in many types
        raise _bad(p, f"{type(err).__name__}: {err}") from err
    return _to_gray_stack(arr, p)


def _stack(slices: list[np.ndarray], names: list[Path]) -> np.ndarray:
    shapes = {s.shape[1:] for s in slices}
    if len(shapes) > 1:
        detail = ", ".join(f"{n.name}: {s.shape[1:]}" for n, s in zip(names, slices, strict=True))
        raise ValueError(f"images have different sizes ({detail}); resize them to one size")
    return np.concatenate(slices, axis=0)


def load_folder(path: str | os.PathLike) -> np.ndarray:
    """All image files (PNG/TIFF/JPEG/BMP/NPY) of a folder, sorted by name, raw ``(N, H, W)``."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"no such folder: {str(p)!r}")
    files = sorted(f for f in p.iterdir() if f.is_file() and _suffix(f) in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files {IMAGE_SUFFIXES} in folder {str(p)!r}")
    return _stack([load_image_file(f) for f in files], files)


def _read_dicom(path: Path):
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception as err:
        raise _bad(path, f"not a readable DICOM image ({type(err).__name__}: {err})") from err
    if pixels.ndim != 2:
        raise _bad(path, f"expected a single-frame 2-D DICOM image, got shape {pixels.shape}")
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    return ds, pixels.astype(np.float64) * slope + intercept


def is_dicom(path: Path) -> bool:
    """Whether ``path`` is a DICOM image file (by suffix, or the ``DICM`` preamble)."""
    if path.name.upper() == "DICOMDIR":  # an index of the media, not an image
        return False
    if _suffix(path) in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _dicom_records(path: str | os.PathLike) -> list[tuple[Path, Any, np.ndarray]]:
    """``(file, dataset, rescaled pixels)`` of a DICOM series, in slice order: by position along
    the slice normal (``ImagePositionPatient`` . normal of ``ImageOrientationPatient``), else by
    ``InstanceNumber``, else by file name."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and is_dicom(f))
    else:
        raise FileNotFoundError(f"no such file or folder: {str(p)!r}")
    if not files:
        raise ValueError(f"no DICOM files in folder {str(p)!r}")
    records = [(f, *_read_dicom(f)) for f in files]

    def position(ds) -> float | None:
        ipp = getattr(ds, "ImagePositionPatient", None)
        iop = getattr(ds, "ImageOrientationPatient", None)
        if ipp is None or iop is None:
            return None
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        return float(np.dot(normal, np.asarray(ipp, float)))

    pos = [position(ds) for _, ds, _ in records]
    inst = [getattr(ds, "InstanceNumber", None) for _, ds, _ in records]
    if all(v is not None for v in pos):
        order = np.argsort(pos, kind="stable")
    elif all(v is not None for v in inst):
        order = np.argsort([int(v) for v in inst], kind="stable")
    else:
        order = np.arange(len(records))
    return [records[i] for i in order]


def dicom_datasets(path: str | os.PathLike) -> list[Any]:
    """The ``pydicom`` datasets of a DICOM series (folder or file), in the slice order of
    :func:`load_dicom_series` (the templates of a derived series, :mod:`spinv.data.dicom_out`)."""
    return [ds for _, ds, _ in _dicom_records(path)]


def load_dicom_series(path: str | os.PathLike) -> np.ndarray:
    """A DICOM series (folder, or one file) as float32 ``(N, H, W)`` in rescaled units."""
    records = _dicom_records(path)
    slices = [pixels[None].astype(np.float32) for _, _, pixels in records]
    return _stack(slices, [f for f, _, _ in records])


def load_nifti(path: str | os.PathLike) -> np.ndarray:
    """Axial slices of a NIfTI volume (RAS-reoriented, anterior up), float32 ``(N, H, W)``."""
    import nibabel as nib

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    try:
        img = nib.as_closest_canonical(nib.load(p))
        vol = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as err:
        raise _bad(p, f"not a readable NIfTI file ({type(err).__name__}: {err})") from err
    if vol.ndim == 4 and vol.shape[3] == 1:
        vol = vol[..., 0]
    if vol.ndim == 2:
        vol = vol[..., None]
    if vol.ndim != 3:
        raise _bad(p, f"expected a 2-D or 3-D volume, got shape {vol.shape}")
    out = np.stack([np.rot90(vol[:, :, k]) for k in range(vol.shape[2])]).astype(np.float32)
    if not np.isfinite(out).all():
        raise _bad(p, "contains NaN or infinite values")
    return np.ascontiguousarray(out)


def _ifft2c(k: np.ndarray) -> np.ndarray:
    """Centred orthonormal inverse DFT over the last two axes (fastMRI convention)."""
    k = np.fft.ifftshift(k, axes=(-2, -1))
    x = np.fft.ifft2(k, axes=(-2, -1), norm="ortho")
    return np.fft.fftshift(x, axes=(-2, -1))


def load_fastmri_h5(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Images of a fastMRI-style HDF5 file, float32 ``(N, H, W)``.

    ``key=None`` takes ``reconstruction_rss``, else ``reconstruction_esc``, else ``kspace``
    (RSS of the coil images ``|F^{-1} k_c|``). Pass ``key`` to choose explicitly.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    allowed = ("reconstruction_rss", "reconstruction_esc", "kspace")
    if key is not None and key not in allowed:
        raise ValueError(f"key must be one of {allowed} or None, got {key!r}")
    try:
        with h5py.File(p, "r") as f:
            keys = [key] if key is not None else [k for k in allowed if k in f]
            if not keys or keys[0] not in f:
                raise _bad(p, f"no dataset among {allowed}; found {sorted(f.keys())}")
            name = keys[0]
            data = np.asarray(f[name][()])
    except ValueError:
        raise
    except Exception as err:
        raise _bad(p, f"not a readable HDF5 file ({type(err).__name__}: {err})") from err
    if name == "kspace":
        if not np.iscomplexobj(data):
            raise _bad(p, f"kspace must be complex, got {data.dtype}")
        if data.ndim == 3:
            data = data[:, None]
        if data.ndim != 4:
            raise _bad(p, f"kspace must be (N, H, W) or (N, coils, H, W), got {data.shape}")
        coil = _ifft2c(data.astype(np.complex64))
        data = np.sqrt((np.abs(coil) ** 2).sum(axis=1))
    return _to_gray_stack(data, p)


def _normalise(x: np.ndarray, normalize: str, window: tuple[float, float] | None) -> np.ndarray:
    if window is not None:
        lo, hi = (float(v) for v in window)
        if not hi > lo:
            raise ValueError(f"window must be (lo, hi) with hi > lo, got {window!r}")
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if normalize == "none":
        return x.astype(np.float32)
    if normalize == "stack":
        lo, hi = float(x.min()), float(x.max())
        return ((x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)).astype(np.float32)
    if normalize == "image":
        lo = x.min(axis=(1, 2), keepdims=True)
        hi = x.max(axis=(1, 2), keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        return ((x - lo) / span * (hi > lo)).astype(np.float32)
    raise ValueError(f"normalize must be 'stack', 'image' or 'none', got {normalize!r}")


def load_images(
    path: str | os.PathLike,
    normalize: str = "stack",
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """Load a file or folder of images as float32 ``(N, H, W)`` in [0, 1] (see module doc).

    Dispatch: a file by its suffix (image/NPY, DICOM, NIfTI, HDF5); a folder holding DICOM files
    is a DICOM series; a folder of NIfTI or HDF5 files gives their slices concatenated in name
    order; otherwise the folder's image files.
    """
    if normalize not in ("stack", "image", "none"):
        raise ValueError(f"normalize must be 'stack', 'image' or 'none', got {normalize!r}")
    p = Path(path)
    if p.is_file():
        suf = _suffix(p)
        if suf in NIFTI_SUFFIXES:
            x = load_nifti(p)
        elif suf in HDF5_SUFFIXES:
            x = load_fastmri_h5(p)
        elif suf in IMAGE_SUFFIXES:
            x = load_image_file(p)
        elif is_dicom(p):
            x = load_dicom_series(p)
        else:
            raise ValueError(
                f"cannot read {str(p)!r}: unsupported file type {suf!r}; expected an image "
                f"{IMAGE_SUFFIXES}, DICOM, NIfTI {NIFTI_SUFFIXES} or HDF5 {HDF5_SUFFIXES}"
            )
    elif p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        if any(is_dicom(f) for f in files):
            x = load_dicom_series(p)
        elif any(_suffix(f) in NIFTI_SUFFIXES + HDF5_SUFFIXES for f in files):
            vols = [f for f in files if _suffix(f) in NIFTI_SUFFIXES + HDF5_SUFFIXES]
            x = _stack(
                [
                    load_nifti(f) if _suffix(f) in NIFTI_SUFFIXES else load_fastmri_h5(f)
                    for f in vols
                ],
                vols,
            )
        else:
            x = load_folder(p)
    else:
        raise FileNotFoundError(f"no such file or folder: {str(p)!r}")
    return _normalise(x, normalize, window)


def save_image(path: str | os.PathLike, array: object) -> None:
    """Write one image atomically: ``.npy`` keeps the array as is (float32 if real, any shape);
    ``.png`` writes 8-bit gray: float values are clipped to [0, 1] and scaled to 0..255, uint8
    is kept. Tensors are accepted; singleton dimensions are squeezed for PNG.
    """
    p = Path(path)
    try:
        import torch

        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(array)
    suf = _suffix(p)
    buf = io.BytesIO()
    if suf == ".npy":
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        np.save(buf, a, allow_pickle=False)
    elif suf == ".png":
        a = np.squeeze(a)
        if a.ndim != 2:
            raise ValueError(f"PNG needs a single 2-D image, got array of shape {np.shape(array)}")
        if np.iscomplexobj(a):
            a = np.abs(a)
        if a.dtype != np.uint8:
            a = a.astype(np.float64)
            if not np.isfinite(a).all():
                raise ValueError("array contains NaN or infinite values")
            a = np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
        import imageio.v3 as iio

        buf.write(iio.imwrite("<bytes>", a, extension=".png"))
    else:
        raise ValueError(f"path must end in .png or .npy, got {str(p)!r}")
    atomic_write_bytes(p, buf.getvalue())


def save_volume(path: str | os.PathLike, images: object, force: bool = False) -> list[Path]:
    """Write a stack of reconstructions ``(B, H, W)`` (or ``(B, 1, H, W)``) atomically.

    * ``.npy``: the whole stack (one slice: ``(H, W)``; complex kept, real as float32);
    * ``.nii.gz`` / ``.nii``: magnitudes as a NIfTI volume ``(H, W, B)``, identity affine;
    * ``.png``: one 8-bit image (:func:`save_image`), or ``NAME_000.png``, ... per slice.

    An existing output is replaced only with ``force``, checked for every file before any is
    written, so nothing is half-replaced. Returns the written paths.
    """
    import torch

    p = Path(path)
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected images (B, H, W), got shape {np.shape(images)}")
    suf = _suffix(p)
    if suf == ".png":
        targets = [p] if a.shape[0] == 1 else [
            p.with_name(f"{p.stem}_{i:03d}.png") for i in range(a.shape[0])]
    elif suf in (".npy",) + NIFTI_SUFFIXES:
        targets = [p]
    else:
        raise ValueError(f"--out {str(p)!r}: expected a .npy, .png or .nii.gz file name")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"--out {existing[0]!r} exists; pass --force to replace it or choose "
                         "another name")
    if suf == ".png":
        for t, img in zip(targets, a, strict=True):
            save_image(t, img)
    elif suf == ".npy":
        save_image(p, a[0] if a.shape[0] == 1 else a)
    else:
        import nibabel as nib

        vol = np.abs(a).astype(np.float32).transpose(1, 2, 0)
        atomic_write_bytes(p, nib.Nifti1Image(vol, np.eye(4)).to_bytes() if suf == ".nii"
                           else _gzip(nib.Nifti1Image(vol, np.eye(4)).to_bytes()))
    return targets


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)
