"""Real images bundled with spinv, with fixed train/val/test splits.

The arrays live in ``spinv/data/bundled/<name>/<name>.npz``; each folder also holds the licence
text(s) (``LICENSE*``) and ``provenance.json`` (source package, version, sha256 of the source file,
build date, processing steps), written by ``tools/build_datasets.py``.

=================  =====================  =================================================
name               shape (all splits)      content, licence
=================  =====================  =================================================
``ct-head``        (100, 256, 256)         axial head CT (InVesalius "Cranium"), GPL-2
``brain-t1``       (140, 224, 224)         axial slices of the Colin27 T1 template, BSD-3
``brain-complex``  (1, 217, 181)           a real complex MRI slice (ITK examples), Apache-2.0
``natural``        (18, 256, 256)          grayscale photographs (skimage, pywt, sporco)
=================  =====================  =================================================

Normalisation to [0, 1]: CT is stored as int16 Hounsfield units clipped to the window
[-1000, 1000] HU, mapped linearly ``(HU + 1000) / 2000``; ``brain-t1`` and ``natural`` are uint8
divided by 255; ``brain-complex`` is the magnitude divided by its maximum (the complex image itself
comes from :func:`load_complex_sample`).

Splits never share a slice. Volumes are split into contiguous slabs along the axial axis, train
(first 60 %), a 3-slice gap, val (20 %), a 3-slice gap, test (the rest), so neighbouring, nearly
identical slices cannot leak between splits: ``ct-head`` 60/20/14 and ``brain-t1`` 84/28/22
slices. ``natural`` uses a fixed assignment by image name (11/3/4 images: the classical test
images camera, barbara, kodim23 and ascent are in test). ``brain-complex`` has one image, in test.

>>> x = load_dataset("ct-head", split="val")
>>> x.shape, x.dtype, bool(x.min() >= 0.0 and x.max() <= 1.0)
((20, 256, 256), dtype('float32'), True)
>>> sorted(list_datasets())
['brain-complex', 'brain-t1', 'ct-head', 'natural']
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).resolve().parent / "bundled"
SPLITS = ("train", "val", "test")
CT_WINDOW = (-1000.0, 1000.0)


@dataclass(frozen=True)
class DatasetInfo:
    """Description of a bundled dataset (see :func:`list_datasets`)."""

    name: str
    description: str
    shape: tuple[int, int, int]
    split_sizes: dict[str, int]
    licence: str
    source: str


_DESCRIPTIONS = {
    "ct-head": (
        "Axial head CT, window [-1000, 1000] HU -> [0, 1]",
        "GPL-2",
        "Debian invesalius-examples, examples/Cranium.inv3",
    ),
    "brain-t1": (
        "Axial T1 MRI slices with brain (Colin27 template), zero-padded to 224 x 224",
        "BSD-3-Clause",
        "Debian mricron-data, templates/ch2.nii.gz",
    ),
    "brain-complex": (
        "One real complex-valued MRI brain slice (magnitude here; see load_complex_sample)",
        "Apache-2.0",
        "Debian insighttoolkit5-examples, Data/itkBrainSliceComplex.mha",
    ),
    "natural": (
        "Grayscale photographs, centre-cropped and resized to 256 x 256",
        "per image: CC0 / public domain / freely redistributable",
        "scikit-image, PyWavelets, sporco package data",
    ),
}


def _unknown(name: object) -> ValueError:
    return ValueError(f"unknown dataset name={name!r}; expected one of {sorted(_DESCRIPTIONS)}")


def _npz_path(name: str) -> Path:
    path = BUNDLED / name / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {path} is missing; rebuild it with tools/build_datasets.py"
        )
    return path


@functools.cache
def _load_all(name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All images of ``name`` as float32 in [0, 1] plus the split indices (cached in memory)."""
    if name == "brain-complex":
        z = load_complex_sample()
        mag = np.clip(np.abs(z)[None], 0.0, 1.0).astype(np.float32)
        empty = np.zeros(0, dtype=np.int64)
        return mag, {"train": empty, "val": empty, "test": np.zeros(1, dtype=np.int64)}
    with np.load(_npz_path(name)) as f:
        splits = {s: f[f"split_{s}"].astype(np.int64) for s in SPLITS}
        if name == "ct-head":
            lo, hi = CT_WINDOW
            x = (f["hu"].astype(np.float32) - lo) / (hi - lo)
            x = np.clip(x, 0.0, 1.0)
        else:
            x = f["images"].astype(np.float32) / 255.0
    return np.ascontiguousarray(x, dtype=np.float32), splits


@functools.lru_cache(maxsize=1)
def _complex_cached() -> np.ndarray:
    with np.load(_npz_path("brain-complex")) as f:
        z = (f["real"].astype(np.float32) + 1j * f["imag"].astype(np.float32)).astype(np.complex64)
    return z / np.float32(np.abs(z).max())


def load_complex_sample() -> np.ndarray:
    """The ITK complex MRI brain slice as a complex64 array (217, 181), max magnitude 1.

    >>> z = load_complex_sample()
    >>> z.shape, z.dtype, round(float(abs(z).max()), 5)
    ((217, 181), dtype('complex64'), 1.0)
    """
    return _complex_cached().copy()


def load_dataset(name: str, split: str | None = None) -> np.ndarray:
    """Load a bundled dataset as a float32 array ``(N, H, W)`` with values in [0, 1].

    Parameters
    ----------
    name : one of :func:`list_datasets` (``"ct-head"``, ``"brain-t1"``, ``"natural"``,
        ``"brain-complex"``).
    split : ``None`` (all images, in their natural order), ``"train"``, ``"val"`` or ``"test"``.

    The decoded arrays are cached in memory; each call returns a fresh copy, safe to modify.
    """
    if not isinstance(name, str) or name not in _DESCRIPTIONS:
        raise _unknown(name)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r}: unknown split; expected one of {list(SPLITS)} or None")
    x, splits = _load_all(name)
    if split is None:
        return x.copy()
    return x[splits[split]]  # fancy indexing returns a copy


def split_indices(name: str) -> dict[str, np.ndarray]:
    """Indices (into ``load_dataset(name)``) of each split; disjoint by construction."""
    if not isinstance(name, str) or name not in _DESCRIPTIONS:
        raise _unknown(name)
    return {k: v.copy() for k, v in _load_all(name)[1].items()}


def provenance(name: str) -> dict:
    """The provenance record written by ``tools/build_datasets.py`` for ``name``."""
    if not isinstance(name, str) or name not in _DESCRIPTIONS:
        raise _unknown(name)
    with open(BUNDLED / name / "provenance.json", encoding="utf-8") as f:
        return json.load(f)


def list_datasets() -> dict[str, DatasetInfo]:
    """Name -> :class:`DatasetInfo` (description, full shape, split sizes, licence, source)."""
    out = {}
    for name, (desc, licence, source) in _DESCRIPTIONS.items():
        x, splits = _load_all(name)
        out[name] = DatasetInfo(
            name=name,
            description=desc,
            shape=tuple(int(s) for s in x.shape),
            split_sizes={k: int(len(v)) for k, v in splits.items()},
            licence=licence,
            source=source,
        )
    return out
