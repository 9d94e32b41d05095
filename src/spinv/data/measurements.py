"""Measurements read from users' files, without any ground truth.

Three sources (issue 13, item 1):

* **spinv's own** ``.npz`` written by ``spinv simulate``: the measurements ``y`` and the
  serialised problem (key ``problem``, the JSON of :meth:`spinv.problems.Problem.to_dict`), so the
  set-up travels with the data (:func:`read_spinv_npz`);
* **a raw sinogram** ``.npy`` / ``.npz`` (one array) / a folder of them, shape ``(angles,
  detectors)`` or ``(slices, angles, detectors)``, whose geometry the user states
  (:class:`SinogramGeometry`) and which is checked against the array (:func:`read_sinogram`);
* **fastMRI HDF5** single-coil ``kspace`` ``(slices, H, W)`` complex, with the file's own ``mask``
  (challenge/test files) or one given by the caller (:func:`read_fastmri_kspace`).

fastMRI's k-space convention is :math:`k = \\mathrm{fftshift}(F\\,\\mathrm{ifftshift}(x))` (its
``ifft2c`` inverts it); spinv's :class:`~spinv.operators.mri.SubsampledFourier` uses
:math:`y = \\mathrm{fftshift}(F x)` (thesis §1.2.1, centred k-space). For even ``H, W`` the two
differ by an image shift of half the field of view, i.e. by the modulation
:math:`y_{ij} = (-1)^{i + j + H/2 + W/2} k_{ij}` in centred indices
(:func:`fastmri_to_spinv_kspace`), so the zero filling of spinv equals fastMRI's ``ifft2c``
exactly. The reconstruction is cropped to the fastMRI output size (the ``reconSpace`` matrix of
the ISMRMRD header, else the shape of a stored reconstruction, else 320 x 320), like the
fastMRI reference code's ``complex_center_crop``.

Intensities: learned models and TV's :math:`\\alpha` assume images in about [0, 1], while scanner
units are arbitrary. :func:`read_fastmri_kspace` therefore divides the k-space of a volume by one
``scale`` (the maximum magnitude of its cropped zero-filled images); :attr:`Measurements.scale`
records it so reconstructions can be brought back to the file's units.

Nothing here writes: every reader only opens its file for reading, and every error is a
``ValueError`` (or ``FileNotFoundError``) naming the file and, where one applies, the option
that fixes it.

>>> import numpy as np, tempfile, os
>>> d = tempfile.mkdtemp(); path = os.path.join(d, "sino.npy")
>>> np.save(path, np.zeros((50, 91), np.float32))
>>> m = read_sinogram(path, SinogramGeometry(n_angles=50))
>>> tuple(m.y.shape), m.kind
((1, 1, 50, 91), 'ct')
>>> read_sinogram(path, SinogramGeometry(n_angles=60))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: --angles 60 does not match ...: the sinogram has 50 rows (views); ...
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FASTMRI_DEFAULT_CROP",
    "Measurements",
    "SinogramGeometry",
    "center_crop",
    "fastmri_crop_size",
    "fastmri_to_spinv_kspace",
    "read_fastmri_kspace",
    "read_measurements",
    "read_sinogram",
    "read_spinv_npz",
]

FASTMRI_DEFAULT_CROP = (320, 320)
SINOGRAM_SUFFIXES = (".npy", ".npz")
#: bins wider than this many image pixels describe no scanner (1e300 overflowed the operator's
#: memory estimate into a 300-digit number before it was refused)
MAX_DETECTOR_SPACING = 1e3
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass
class Measurements:
    """A batch of measurements and what is known of how they were taken.

    ``y``: ``(B, 1, angles, detectors)`` float32 sinograms or ``(B, 1, H, W)`` complex64 k-space
    in spinv's centred convention; ``kind``: ``"ct"`` or ``"mri"``; ``problem``: the serialised
    problem the file carries (spinv ``.npz``), else ``None``; ``mask``: the ``(H, W)`` sampling
    mask when known; ``crop``: the output size of the reconstruction (fastMRI), else ``None``;
    ``scale``: the factor the data were divided by; ``names``: one label per slice;
    ``ground_truth``: the reference images a spinv ``.npz`` carries, else ``None``.
    """

    y: torch.Tensor
    kind: str
    source: str
    problem: dict | None = None
    mask: torch.Tensor | None = None
    crop: tuple[int, int] | None = None
    scale: float = 1.0
    names: list[str] = field(default_factory=list)
    ground_truth: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class SinogramGeometry:
    """Parallel-beam geometry of a raw sinogram (``None``: take it from the array).

    ``n_angles`` views equispaced on ``[0, angular_range)`` (radians; the thesis: 50 views on
    :math:`[0, \\pi)`), ``n_detectors`` bins of width ``detector_spacing`` (in pixels).
    """

    n_angles: int | None = None
    n_detectors: int | None = None
    angular_range: float = math.pi
    detector_spacing: float = 1.0

    def __post_init__(self) -> None:
        for name in ("n_angles", "n_detectors"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                option = "--angles" if name == "n_angles" else "--detectors"
                raise ValueError(f"{option} {value!r}: expected a positive integer")
        if not (0 < self.angular_range <= 2 * math.pi):
            raise ValueError(
                f"--angular-range {self.angular_range!r}: expected radians in (0, 2 pi]")
        if not 0 < self.detector_spacing <= MAX_DETECTOR_SPACING:
            raise ValueError(
                f"--detector-spacing {self.detector_spacing!r}: expected a positive number of "
                f"pixels <= {MAX_DETECTOR_SPACING:g} (the bin width in image pixels)")


def _bad(path: Path | str, reason: str) -> ValueError:
    return ValueError(f"{str(path)!r}: {reason}")


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"--measurements {str(p)!r}: no such file or folder")
    return p


# ----------------------------------------------------------------------------- spinv .npz


def read_spinv_npz(path: str | os.PathLike) -> Measurements:
    """The measurements and serialised problem of a ``spinv simulate`` file (no pickles)."""
    p = _existing(path)
    try:
        with np.load(p, allow_pickle=False) as f:
            keys = set(f.files)
            if "y" not in keys or "problem" not in keys:
                raise _bad(p, "not a spinv measurement file (needs the arrays 'y' and "
                              f"'problem'; found {sorted(keys)}); for a raw sinogram pass "
                              "--angles/--detectors")
            y = np.asarray(f["y"])
            problem = json.loads(str(f["problem"]))
            truth = np.asarray(f["ground_truth"]) if "ground_truth" in keys else None
            mask = np.asarray(f["mask"]) if "mask" in keys else None
    except (OSError, json.JSONDecodeError, EOFError, ValueError) as err:
        if str(err).startswith(repr(str(p))):
            raise
        raise _bad(p, f"not a readable .npz file ({type(err).__name__}: {err})") from None
    if not isinstance(problem, dict) or "kind" not in problem:
        raise _bad(p, "its 'problem' entry is not a serialised spinv problem")
    t = torch.from_numpy(np.ascontiguousarray(y))
    while t.ndim < 4:
        t = t[None]
    kind = str(problem["kind"])
    t = t.to(torch.complex64) if t.is_complex() else t.float()
    return Measurements(
        y=t, kind=kind, source=str(p), problem=problem,
        mask=None if mask is None else torch.from_numpy(mask).float(),
        names=[f"{p.name}[{i}]" for i in range(t.shape[0])],
        ground_truth=None if truth is None else _as_images(truth),
    )


def _as_images(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).float()
    while t.ndim < 4:
        t = t[None]
    return t


# ----------------------------------------------------------------------------- raw sinograms


def _sinogram_arrays(p: Path) -> list[tuple[str, np.ndarray]]:
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix.lower() in SINOGRAM_SUFFIXES)
        if not files:
            raise _bad(p, "folder holds no .npy or .npz sinogram")
        return [item for q in files for item in _sinogram_arrays(q)]
    suffix = p.suffix.lower()
    if suffix not in SINOGRAM_SUFFIXES:
        raise _bad(p, f"a raw sinogram must be .npy, .npz or a folder of them, not {suffix!r}")
    try:
        if suffix == ".npy":
            from spinv.data.npy import read_npy  # header, size and dtype checked, no pickle

            return [(p.name, read_npy(p, "--measurements"))]
        with np.load(p, allow_pickle=False) as f:
            names = [k for k in f.files if k not in ("ground_truth", "options", "problem")]
            key = "sinogram" if "sinogram" in names else ("y" if "y" in names else None)
            if key is None and len(names) != 1:
                raise _bad(p, f"holds {len(names)} arrays {sorted(names)}; name the sinogram "
                              "'sinogram' or store one array")
            return [(p.name, np.asarray(f[key or names[0]]))]
    except ValueError as err:
        if str(err).startswith(repr(str(p))):
            raise
        raise _bad(p, f"not a readable {suffix} array file ({err})") from None
    except (OSError, EOFError) as err:
        raise _bad(p, f"not a readable {suffix} file ({type(err).__name__}: {err})") from None


def read_sinogram(path: str | os.PathLike, geometry: SinogramGeometry) -> Measurements:
    """Raw post-log sinogram(s) ``(angles, detectors)`` or ``(slices, angles, detectors)``
    from a ``.npy``, a one-array ``.npz`` or a folder of them, checked against ``geometry``."""
    p = _existing(path)
    stacks, names = [], []
    for name, a in _sinogram_arrays(p):
        if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
            raise _bad(p / name if p.is_dir() else p,
                       f"a sinogram must hold real numbers, got dtype {a.dtype}")
        a = np.squeeze(a) if a.ndim > 3 else a
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise _bad(p, f"{name}: expected (angles, detectors) or (slices, angles, "
                          f"detectors), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise _bad(p, f"{name}: contains NaN or infinite values")
        stacks.append(a.astype(np.float32))
        names += [f"{name}[{i}]" for i in range(a.shape[0])] if a.shape[0] > 1 else [name]
    shapes = {s.shape[1:] for s in stacks}
    if len(shapes) != 1:
        raise _bad(p, f"the sinograms have different shapes {sorted(shapes)}")
    n_angles, n_det = shapes.pop()
    g = geometry
    if g.n_angles is not None and g.n_angles != n_angles:
        raise ValueError(
            f"--angles {g.n_angles} does not match {str(p)!r}: the sinogram has {n_angles} "
            f"rows (views); pass --angles {n_angles}, or transpose the array if its rows "
            "are detectors")
    if g.n_detectors is not None and g.n_detectors != n_det:
        raise ValueError(
            f"--detectors {g.n_detectors} does not match {str(p)!r}: the sinogram has {n_det} "
            f"columns (detector bins); pass --detectors {n_det}")
    y = torch.from_numpy(np.concatenate(stacks))[:, None]
    return Measurements(y=y, kind="ct", source=str(p), names=names)


# ----------------------------------------------------------------------------- fastMRI


def fastmri_to_spinv_kspace(k: torch.Tensor) -> torch.Tensor:
    """fastMRI k-space (``ifft2c`` convention) to spinv's centred convention (module
    docstring): the modulation :math:`(-1)^{i+j+H/2+W/2}`; needs even ``H`` and ``W``.

    >>> x = torch.randn(6, 4, dtype=torch.complex64)
    >>> k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x), norm="ortho"))
    >>> y = fastmri_to_spinv_kspace(k)
    >>> bool(torch.allclose(torch.fft.ifft2(torch.fft.ifftshift(y), norm="ortho"), x, atol=1e-6))
    True
    """
    h, w = k.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"fastMRI k-space must have even height and width, got {h} x {w}")
    i = torch.arange(h).view(-1, 1)
    j = torch.arange(w).view(1, -1)
    sign = 1 - 2 * ((i + j + h // 2 + w // 2) % 2)
    return k * sign.to(k.real.dtype)


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centred ``size`` window of the last two axes (fastMRI's ``center_crop``: start at
    ``(H - h) // 2``); a size larger than the image is clipped to it."""
    h, w = x.shape[-2:]
    ch, cw = min(size[0], h), min(size[1], w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def fastmri_crop_size(f) -> tuple[int, int]:
    """Output size of a fastMRI file: the ISMRMRD header's ``reconSpace`` ``matrixSize``, else
    the shape of a stored reconstruction, else :data:`FASTMRI_DEFAULT_CROP`."""
    header = f.attrs.get("ismrmrd_header") if hasattr(f, "attrs") else None
    if header is None and "ismrmrd_header" in f:
        header = f["ismrmrd_header"][()]
    if header is not None:
        text = header.decode(errors="replace") if isinstance(header, bytes) else str(header)
        block = re.search(r"<reconSpace>(.*?)</reconSpace>", text, re.S)
        if block:
            x = re.search(r"<x>\s*(\d+)\s*</x>", block.group(1))
            y = re.search(r"<y>\s*(\d+)\s*</y>", block.group(1))
            if x and y:
                return int(x.group(1)), int(y.group(1))
    for key in ("reconstruction_esc", "reconstruction_rss"):
        if key in f:
            shape = f[key].shape
            return int(shape[-2]), int(shape[-1])
    return FASTMRI_DEFAULT_CROP


def _fastmri_mask(p: Path, f, mask, shape: tuple[int, int]) -> torch.Tensor | None:
    h, w = shape
    if mask is None and "mask" in f:
        mask = np.asarray(f["mask"][()])
    if mask is None:
        return None
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if m.ndim == 1:
        if m.shape[0] != w:
            raise _bad(p, f"the mask has {m.shape[0]} columns, the k-space {w}; pass a mask "
                          f"with {w} entries (--mask)")
        m = m.view(1, w).expand(h, w).clone()
    if tuple(m.shape) != (h, w):
        raise _bad(p, f"the mask has shape {tuple(m.shape)}, the k-space {(h, w)} (--mask)")
    if float(m.min()) < 0 or float(m.max()) > 1:
        raise _bad(p, "the mask must hold values in [0, 1] (--mask)")
    return m


def read_fastmri_kspace(path: str | os.PathLike, mask=None,
                        slices: slice | None = None) -> Measurements:
    """Single-coil fastMRI ``kspace`` ``(slices, H, W)`` as spinv k-space ``(B, 1, H, W)``.

    ``mask``: ``(W,)`` or ``(H, W)`` weights in [0, 1]; default the file's own ``mask``, else
    none (fully sampled; the caller may subsample retrospectively). Masked entries of the
    returned k-space are zero. Multi-coil files ``(slices, coils, H, W)`` give ``(B, coils, H,
    W)`` (:func:`spinv.data.multicoil.read_fastmri_multicoil`).
    """
    import h5py

    p = _existing(path)
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise _bad(p, f"not a readable HDF5 file ({err})") from None
    with f:
        if "kspace" not in f:
            raise _bad(p, f"no 'kspace' dataset (found {sorted(f.keys())}); is this a fastMRI "
                          "file?")
        ds = f["kspace"]
        if len(ds.shape) == 4:  # multi-coil (slices, coils, H, W)
            from spinv.data.multicoil import read_fastmri_multicoil

            return read_fastmri_multicoil(p, f, mask, slices)
        if len(ds.shape) != 3:
            raise _bad(p, f"kspace must be (slices, H, W), got shape {tuple(ds.shape)}")
        k = np.asarray(ds[slices] if slices is not None else ds[()])
        if not np.iscomplexobj(k):
            raise _bad(p, f"kspace must be complex, got dtype {k.dtype}")
        crop = fastmri_crop_size(f)
        m = _fastmri_mask(p, f, mask, k.shape[-2:])
    kt = fastmri_to_spinv_kspace(torch.from_numpy(k.astype(np.complex64)))[:, None]
    if m is not None:
        kt = kt * m
    zero_filled = center_crop(torch.fft.ifft2(torch.fft.ifftshift(kt, dim=(-2, -1)),
                                              norm="ortho"), crop)
    scale = float(zero_filled.abs().max())
    if not scale > 0:
        raise _bad(p, "the k-space is all zeros")
    first = 0 if slices is None else (slices.start or 0)
    return Measurements(y=kt / scale, kind="mri", source=str(p), mask=m, crop=crop, scale=scale,
                        names=[f"{p.name}[{first + i}]" for i in range(kt.shape[0])])


# ----------------------------------------------------------------------------- dispatch


def read_measurements(path: str | os.PathLike, geometry: SinogramGeometry | None = None,
                      mask=None) -> Measurements:
    """Read ``path`` as a spinv ``.npz`` (it carries ``problem``), a fastMRI ``.h5``, or a raw
    sinogram (``.npy``/``.npz``/folder; ``geometry`` checks it)."""
    p = _existing(path)
    if p.is_file() and p.suffix.lower() in HDF5_SUFFIXES:
        return read_fastmri_kspace(p, mask=mask)
    if p.is_file() and p.suffix.lower() == ".npz":
        try:
            with np.load(p, allow_pickle=False) as f:
                carries_problem = "problem" in f.files
        except (OSError, EOFError, ValueError) as err:
            raise _bad(p, f"not a readable .npz file ({type(err).__name__}: {err})") from None
        if carries_problem:
            return read_spinv_npz(p)
    return read_sinogram(p, geometry or SinogramGeometry())
