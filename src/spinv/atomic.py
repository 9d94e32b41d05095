"""Atomic file writes: nothing spinv writes is ever left half-written.

Every writer goes through :func:`atomic_write_bytes`: the data go to a temporary file in the
target's folder, are flushed and fsync'ed, and the file is renamed over the target with
:func:`os.replace` (atomic on POSIX and Windows). A crash leaves either the old file or the new
one, never a mixture; the temporary file is removed on error.

Permissions: a new file gets ``0o666`` minus the process umask (what ``open()`` would give, so a
umask of 077 keeps a patient's image private); a file that is replaced keeps its own mode.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_json(d / "a.json", {"x": 1})
>>> json.loads((d / "a.json").read_text())
{'x': 1}
>>> sorted(p.name for p in d.iterdir())
['a.json']
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npy",
    "atomic_save_npz",
    "atomic_save_figure",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``;
    creates missing parent folders. Mode: the replaced file's, else ``0o666 & ~umask``."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it; not thread-safe in theory, but
    only the mode bits of files created in between could be affected)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = False) -> None:
    """``obj`` as indented JSON (trailing newline), atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    """One array as ``.npy`` (never pickled), atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_npz(path: str | os.PathLike, compressed: bool = True, **arrays: Any) -> None:
    """Named arrays as ``.npz``, atomically."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """A matplotlib figure as PNG (format from the suffix), atomically; closes the figure."""
    import matplotlib.pyplot as plt

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
