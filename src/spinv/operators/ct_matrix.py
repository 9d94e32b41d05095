"""The system matrix of parallel-beam CT (Joseph's method), its disk cache and its memory budget.

:func:`build_joseph_matrix` computes the sparse matrix of :class:`spinv.operators.ParallelBeamCT`
(the geometry and the interpolation are described there); :func:`load_cached_matrix` /
:func:`save_cached_matrix` keep it under :func:`cache_dir` as a plain ``.npz`` (no pickles) whose
key records the geometry, so a stale or altered file is rebuilt; :func:`check_operator_memory`
refuses a geometry whose matrix would not fit (:func:`operator_memory_limit`) before anything is
built.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spinv.atomic import atomic_write_bytes

__all__ = [
    "MATRIX_FORMAT_VERSION",
    "build_joseph_matrix",
    "build_ray_matrix",
    "cache_dir",
    "check_operator_memory",
    "estimate_operator_bytes",
    "load_cached_matrix",
    "operator_memory_limit",
    "save_cached_matrix",
]

MATRIX_FORMAT_VERSION = 2  # 2: the file carries the SHA-256 of its arrays


#: bytes per stored nonzero of the system matrix over its life: R and R^T in scipy CSR (float32
#: value + int32 index each) and their torch copies (float32 + int64 index each)
BYTES_PER_NONZERO = 40
#: nonzeros per ray and image row: Joseph's method interpolates 2 pixels on each of the N lines a
#: ray crosses; measured 1.25-1.27 on the 64-256 px grids at 50 views, 1.5 leaves room
NONZEROS_PER_RAY_AND_ROW = 1.5


def operator_memory_limit() -> int:
    """Bytes a CT system matrix may take: ``SPINV_MAX_OPERATOR_GIB`` (GiB) if set, else half of
    the machine's physical memory."""
    env = os.environ.get("SPINV_MAX_OPERATOR_GIB")
    if env is not None:
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"SPINV_MAX_OPERATOR_GIB={env!r}: expected a number of GiB") from None
        if not value > 0:
            raise ValueError(f"SPINV_MAX_OPERATOR_GIB={env!r}: expected a positive number")
        return int(value * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def estimate_operator_bytes(image_size: int, n_angles: int, n_detectors: int) -> int:
    """Estimated memory of the cached system matrix of a parallel-beam geometry (module
    constants :data:`NONZEROS_PER_RAY_AND_ROW`, :data:`BYTES_PER_NONZERO`)."""
    nonzeros = NONZEROS_PER_RAY_AND_ROW * n_angles * n_detectors * image_size
    return int(nonzeros * BYTES_PER_NONZERO)


def check_operator_memory(image_size: int, n_angles: int, n_detectors: int) -> None:
    """Refuse, before building it, a system matrix larger than :func:`operator_memory_limit`
    (a 4000² image would otherwise run until the kernel kills the process)."""
    need, limit = estimate_operator_bytes(image_size, n_angles, n_detectors), \
        operator_memory_limit()
    if need > limit:
        raise ValueError(
            f"CT operator {image_size}x{image_size} px, {n_angles} views, {n_detectors} "
            f"detectors: its system matrix needs about {need / 2**30:.1f} GiB, above the limit "
            f"of {limit / 2**30:.1f} GiB; use a smaller image size (--size), fewer views, or "
            "raise the limit with SPINV_MAX_OPERATOR_GIB")


def cache_dir() -> Path:
    """Directory of cached system matrices: ``$SPINV_CACHE/ct`` (default ``~/.cache/spinv/ct``)."""
    root = os.environ.get("SPINV_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "spinv")
    return Path(root) / "ct"


def build_joseph_matrix(
    image_size: int,
    angles: np.ndarray,
    n_detectors: int,
    detector_spacing: float = 1.0,
    pixel_size: float = 1.0,
    progress: bool | None = None,
) -> sp.csr_matrix:
    """Joseph's-method system matrix of parallel beams, shape ``(n_angles * n_detectors, N * N)``,
    float32 CSR: every view ``theta`` has the rays :math:`x\\cdot\\omega_\\theta = s_k`.

    Row ``a * n_detectors + k`` is the ray (angle ``a``, bin ``k``); column ``i * N + j`` the
    pixel in row ``i``, column ``j``. ``progress=None`` shows a tqdm bar when the build is
    predicted (from the first angle) to take more than ~2 s.
    """
    angles = np.asarray(angles, dtype=np.float64)
    s = (np.arange(n_detectors) - (n_detectors - 1) / 2.0) * detector_spacing
    ones = np.ones(n_detectors)
    sines = np.array([math.sin(t) for t in angles])[:, None] * ones
    cosines = np.array([math.cos(t) for t in angles])[:, None] * ones
    return build_ray_matrix(image_size, sines, cosines, np.broadcast_to(s, sines.shape),
                            pixel_size, progress)


def _view_entries(n: int, sin: np.ndarray, cos: np.ndarray, s: np.ndarray,
                  pixel_size: float) -> tuple[list, list, list]:
    """Joseph entries ``(ray, pixel, value)`` of the rays :math:`x\\cos\\theta_r + y\\sin
    \\theta_r = s_r` of one view (1-D arrays ``sin``, ``cos``, ``s``, one entry per ray)."""
    c = (n - 1) / 2.0
    steps = np.arange(n)[None, :]
    rows, cols, vals = [], [], []
    by_column = np.abs(sin) >= np.abs(cos)
    for along_columns in (True, False):
        chosen = np.nonzero(by_column == along_columns)[0]
        if chosen.size == 0:
            continue
        sn, cs, ss = sin[chosen, None], cos[chosen, None], s[chosen, None]
        if along_columns:  # step along columns j, interpolate between rows
            x = (steps - c) * pixel_size
            frac = c - (ss - x * cs) / sn / pixel_size  # fractional row index
            weight = pixel_size / np.abs(sn)
        else:  # step along rows i, interpolate between columns
            y = (c - steps) * pixel_size
            frac = c + (ss - y * sn) / cs / pixel_size  # fractional column index
            weight = pixel_size / np.abs(cs)
        lo = np.floor(frac)
        t = frac - lo
        lo = lo.astype(np.int64)
        ray = np.broadcast_to(chosen[:, None], frac.shape)
        step = np.broadcast_to(steps, frac.shape)
        for idx, w in ((lo, 1.0 - t), (lo + 1, t)):
            ok = (idx >= 0) & (idx < n) & (w > 0)
            rows.append(ray[ok])
            cols.append(idx[ok] * n + step[ok] if along_columns else step[ok] * n + idx[ok])
            vals.append((w * weight)[ok].astype(np.float32))
    return rows, cols, vals


def build_ray_matrix(
    image_size: int,
    sines: np.ndarray,
    cosines: np.ndarray,
    offsets: np.ndarray,
    pixel_size: float = 1.0,
    progress: bool | None = None,
) -> sp.csr_matrix:
    """Joseph's-method matrix of arbitrary lines, one ``(n_views, n_rays)`` array each of
    :math:`\\sin\\theta`, :math:`\\cos\\theta` and offset :math:`s` (the ray
    :math:`x\\cos\\theta + y\\sin\\theta = s`, image centred at the origin, ``y`` up); row
    ``v * n_rays + r``. Each ray steps through the columns (rows) of the image when
    :math:`|\\sin\\theta| \\ge |\\cos\\theta|` (otherwise), interpolates linearly between the two
    nearest pixels and weights by the path length per step :math:`p/\\max(|\\sin|, |\\cos|)`.
    Used by parallel beams (:func:`build_joseph_matrix`) and fan beams
    (:mod:`spinv.operators.ct_fan`), whose rays differ only in their ``(theta, s)``."""
    n = int(image_size)
    n_views, n_rays = sines.shape
    rows_all, cols_all, vals_all = [], [], []
    bar, start = None, time.perf_counter()
    for v in range(n_views):
        rows, cols, vals = _view_entries(n, sines[v], cosines[v], offsets[v], pixel_size)
        rows_all += [v * n_rays + r for r in rows]
        cols_all += cols
        vals_all += vals
        if v == 0 and progress is not False and n_views > 1:
            predicted = (time.perf_counter() - start) * n_views * 1.5
            if progress or predicted > 2.0:
                from tqdm.auto import tqdm

                bar = tqdm(total=n_views, initial=1, desc="building CT matrix", leave=False)
        elif bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    shape = (n_views * n_rays, n * n)
    matrix = sp.csr_matrix(
        (np.concatenate(vals_all), (np.concatenate(rows_all), np.concatenate(cols_all))),
        shape=shape,
    )
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.sort_indices()
    return matrix


def load_cached_matrix(path: Path, key: str, shape: tuple[int, int]) -> sp.csr_matrix | None:
    """Load and validate a cached matrix; ``None`` if missing, stale or corrupt."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or tuple(int(v) for v in z["shape"]) != shape:
                raise ValueError("geometry key mismatch")
            indptr, indices, data = z["indptr"], z["indices"], z["data"]
            recorded = str(z["sha256"]) if "sha256" in z.files else None
        if recorded != _digest(key, indptr, indices, data):
            raise ValueError("its arrays do not match the SHA-256 it records")
        nnz = data.shape[0]
        if (
            indptr.shape != (shape[0] + 1,)
            or indices.shape != (nnz,)
            or indptr[0] != 0
            or indptr[-1] != nnz
            or np.any(np.diff(indptr) < 0)
            or (nnz and (indices.min() < 0 or indices.max() >= shape[1]))
            or not np.all(np.isfinite(data))
        ):
            raise ValueError("inconsistent CSR arrays")
        return sp.csr_matrix(
            (data.astype(np.float32), indices.astype(np.int32), indptr.astype(np.int64)),
            shape=shape,
        )
    except Exception as err:  # any damage: rebuild, never trust the file
        warnings.warn(f"ignoring corrupt CT cache file {path} ({err}); rebuilding", stacklevel=3)
        return None


def _digest(key: str, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> str:
    h = hashlib.sha256(key.encode())
    for a in (indptr.astype(np.int64), indices.astype(np.int32), data.astype(np.float32)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_cached_matrix(path: Path, key: str, matrix: sp.csr_matrix) -> None:
    """Write ``matrix`` atomically (:func:`spinv.atomic.atomic_write_bytes`) with the SHA-256 of
    its geometry key and arrays, so an altered file is detected; a cache that cannot be written
    only warns."""
    buf = io.BytesIO()
    indptr, indices = matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32)
    data = matrix.data.astype(np.float32)
    np.savez(buf, key=np.array(key), shape=np.array(matrix.shape, dtype=np.int64),
             indptr=indptr, indices=indices, data=data,
             sha256=np.array(_digest(key, indptr, indices, data)))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as err:
        warnings.warn(f"could not write CT cache file {path}: {err}", stacklevel=3)


