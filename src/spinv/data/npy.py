"""One safe reader for the user's NumPy files (``.npy`` arrays and ``.npz`` archives).

Every failure is one ``ValueError`` (``FileNotFoundError`` when absent) naming the file and
what is wrong, never a raw NumPy message, a ``MemoryError`` or an ``EOFError`` (which the CLI
framework used to report as an interrupt):

- nothing is unpickled (``allow_pickle=False``: object arrays are refused);
- a ``.npy`` is opened memory-mapped first, so a header that promises more data than the file
  holds (truncated, or a forged shape of 40 GB) is refused before any allocation;
- the array must be numeric (bool, integer, float or complex) and hold at least one element.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> np.save(d / "a.npy", np.ones((2, 3), np.float32))
>>> read_npy(d / "a.npy").shape
(2, 3)
>>> (d / "b.npy").write_bytes(b"junk") and None
>>> read_npy(d / "b.npy", "--mask")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: --mask '.../b.npy': not a NumPy .npy file (no NPY header)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["check_numeric", "read_npy", "read_npz"]

MAGIC = b"\x93NUMPY"


def _where(path: Path, what: str | None) -> str:
    return f"{what} {str(path)!r}" if what else f"{str(path)!r}"


def check_numeric(array: np.ndarray, path: Path, what: str | None = None,
                  kinds: str = "biufc") -> np.ndarray:
    """``array`` if it is numeric (of the NumPy dtype ``kinds``; ``"biuf"``: real) and
    non-empty, else a ``ValueError`` naming the file."""
    if array.dtype.kind not in kinds:
        expected = "real numbers" if "c" not in kinds else "numbers"
        raise ValueError(f"{_where(path, what)}: holds {array.dtype} values; expected {expected}")
    if array.size == 0:
        raise ValueError(f"{_where(path, what)}: holds no values (shape {array.shape})")
    return array


def read_npy(path: str | os.PathLike, what: str | None = None,
             kinds: str = "biufc") -> np.ndarray:
    """The numeric array of the ``.npy`` file ``path`` (``what``: the option or role, for the
    message, e.g. ``"--mask"``; ``kinds``: the allowed dtype kinds, ``"biuf"`` for real)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{_where(p, what)} does not exist"
                                + (" (it is a folder)" if p.is_dir() else ""))
    with open(p, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{_where(p, what)}: not a NumPy .npy file (no NPY header)")
    try:
        mapped = np.load(p, mmap_mode="r", allow_pickle=False)
        array = np.array(mapped)
    except (ValueError, OSError, EOFError, MemoryError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "mmap length is greater than file size" in reason:
            reason = "the file is shorter than its header says (truncated or damaged)"
        raise ValueError(f"{_where(p, what)}: cannot read it ({reason})") from None
    return check_numeric(array, p, what, kinds)


def read_npz(path: str | os.PathLike, what: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` archive ``path`` by name (each numeric; nothing unpickled)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{_where(p, what)} does not exist")
    if not zipfile.is_zipfile(p):
        raise ValueError(f"{_where(p, what)}: not a NumPy .npz archive")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, MemoryError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{_where(p, what)}: cannot read it ({reason})") from None
    return arrays
