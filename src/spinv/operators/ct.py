"""Parallel-beam ray transform (Joseph's method) as a cached sparse matrix, FBP and simulation.

The CT forward model of thesis §2.5.1 is the parallel-beam ray transform

.. math:: (Ru)(\\theta, s)
          = \\int_{\\mathbb R} u(s\\,\\omega_\\theta + t\\,\\omega_\\theta^\\perp)\\,dt,
          \\qquad \\omega_\\theta = (\\cos\\theta, \\sin\\theta),

sampled at ``n_angles`` angles (default: uniform in :math:`[0,\\pi)`,
``torch.linspace(0, pi, n_angles + 1)[:-1]``; the thesis uses 50 views) and ``n_detectors``
detector bins :math:`s_k = (k - (n_d-1)/2)\\,\\Delta s`.

Units and geometry (the same as ``skimage.transform.radon`` with ``circle=False``): the image
is an ``N x N`` grid of square pixels of side ``pixel_size`` (default 1) centred at the origin;
``x`` points along columns, ``y`` up along rows (row 0 at the top); the detector spacing
``detector_spacing`` defaults to 1 and the default detector count is
:math:`\\lceil\\sqrt2\\,N p/\\Delta s\\rceil`, which covers the whole square. Line integrals are
in *length units* (pixel units when ``pixel_size = 1``): a ray through ``L`` pixels of value 1
gives about ``L * pixel_size``. Angles ``theta`` correspond to ``skimage`` angles
``degrees(theta)``; skimage rotates about pixel ``P // 2`` of its padded grid rather than
the grid centre, so its projections are shifted by up to half a detector bin.

Finer simulation grid: ``ParallelBeamCT(2 * N, n_angles, n_detectors=n_d, pixel_size=0.5)``
describes the same square and the same detector bins as ``ParallelBeamCT(N, n_angles)``, so
its sinograms are directly comparable (see :func:`simulate_ct`).

Discretisation: Joseph's method -- a ray steps through the image one column (when
:math:`|\\sin\\theta|\\ge|\\cos\\theta|`) or one row at a time, interpolates linearly between
the two nearest pixels of that column/row (zero outside the image) and weights the sample by
the path length per step, :math:`p/\\max(|\\sin\\theta|, |\\cos\\theta|)`. The matrix is built
vectorised in numpy, stored as CSR, cached on disk (``$SPINV_CACHE/ct``, default
``~/.cache/spinv/ct``; a ``.npz`` of plain arrays, validated on load and rebuilt if corrupt --
never unpickled), and applied with torch sparse CSR products. The adjoint uses the transpose
of the *same* matrix, so :math:`\\langle Rx, y\\rangle=\\langle x, R^*y\\rangle` holds to
rounding, and autograd through ``A(x)`` / ``A.adjoint(y)`` uses the exact transposes.

>>> import torch
>>> from spinv.operators import ParallelBeamCT
>>> A = ParallelBeamCT(16, n_angles=8, cache=False)
>>> y = A(torch.ones(1, 1, 16, 16))
>>> y.shape
torch.Size([1, 1, 8, 23])
>>> round(float(y[0, 0, 0, 11]), 3)      # theta = 0: a vertical ray through 16 pixels of 1
16.0
>>> A.adjoint_test() < 1e-5
True
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from spinv.operators.base import LinearOperator
from spinv.operators.ct_matrix import (
    MATRIX_FORMAT_VERSION,
    build_joseph_matrix,
    cache_dir,
    check_operator_memory,
    load_cached_matrix,
    save_cached_matrix,
)
from spinv.operators.ct_matrix_free import JosephMatrixFree, MatrixFreeApply, use_matrix_free
from spinv.operators.fbp import FILTERS, filter_sinogram
from spinv.operators.noise import DEFAULT_ETA, DEFAULT_PHOTONS, default_mu, poisson_post_log

__all__ = [
    "RayMatrixOperator", "ParallelBeamCT", "simulate_ct", "fine_grid_sinogram", "cache_dir",
    "build_joseph_matrix",
]

_MEMO: OrderedDict[str, list] = OrderedDict()  # key -> [R, R^T or None]
_MEMO_SIZE = 6


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _Apply(torch.autograd.Function):
    """``Y = M X`` for a sparse matrix ``M`` of the operator; backward applies ``M^T``."""

    @staticmethod
    def forward(ctx, x2d, op, transpose):
        ctx.op, ctx.transpose = op, transpose
        matrix = op._torch_matrix(x2d.dtype, x2d.device, transpose)
        if x2d.shape[1] == 1:  # sparse matrix-vector is ~2x faster than a 1-column matmul
            return torch.mv(matrix, x2d[:, 0]).unsqueeze(1)
        return torch.sparse.mm(matrix, x2d)

    @staticmethod
    def backward(ctx, grad):
        return _Apply.apply(grad.contiguous(), ctx.op, not ctx.transpose), None, None


class RayMatrixOperator(LinearOperator):
    """A CT operator given by a sparse system matrix (rows: rays ``(view, detector)``, columns:
    pixels), built once per geometry, memoised in-process and cached on disk; the adjoint
    applies the transpose of the *same* matrix. Subclasses set ``image_size``, ``n_angles``,
    ``n_detectors``, :attr:`cache_prefix`, and implement :meth:`_geometry_key` and
    :meth:`_build_matrix`, then call :meth:`_setup_matrix` at the end of ``__init__``."""

    domain_dtype = torch.float32
    cache_prefix = "rays"
    _free: JosephMatrixFree | None = None  # set by _setup_matrix; None: the matrix path

    def _setup_matrix(self, cache: bool, free: JosephMatrixFree | None = None) -> None:
        self._use_cache = bool(cache)
        self._key = self._geometry_key()
        self._scipy: list | None = None
        self._torch: dict = {}
        self._free = free  # a matrix-free path replaces the stored matrix
        if free is None:
            self._matrices()  # build or load now, so errors surface at construction

    def _geometry_key(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_matrix(self) -> sp.csr_matrix:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # copies/pickles carry the geometry only; matrices come back from the memo or disk cache
        state = self.__dict__.copy()
        state["_scipy"], state["_torch"] = None, {}
        return state

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        return (1, 1, self.image_size, self.image_size)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        return (self.n_angles, self.n_detectors)

    @property
    def cache_path(self) -> Path:
        digest = hashlib.sha256(self._key.encode()).hexdigest()[:16]
        name = (f"{self.cache_prefix}_{self.image_size}px_{self.n_angles}a_"
                f"{self.n_detectors}d_{digest}.npz")
        return cache_dir() / name

    def _matrices(self) -> list:
        """``[R, R^T or None]`` shared through the in-process memo; ``R^T`` is made on demand."""
        if self._scipy is None:
            if self._key in _MEMO:
                _MEMO.move_to_end(self._key)
                self._scipy = _MEMO[self._key]
            else:
                check_operator_memory(self.image_size, self.n_angles, self.n_detectors)
                shape = (self.n_angles * self.n_detectors, self.image_size**2)
                matrix = (load_cached_matrix(self.cache_path, self._key, shape)
                          if self._use_cache else None)
                if matrix is None:
                    matrix = self._build_matrix()
                    if self._use_cache:
                        save_cached_matrix(self.cache_path, self._key, matrix)
                self._scipy = [matrix, None]
                _MEMO[self._key] = self._scipy
                while len(_MEMO) > _MEMO_SIZE:
                    _MEMO.popitem(last=False)
        return self._scipy

    def _scipy_matrix(self, transpose: bool) -> sp.csr_matrix:
        pair = self._matrices()
        if transpose and pair[1] is None:
            t = pair[0].T.tocsr()
            t.indices = t.indices.astype(np.int32)
            pair[1] = t
        return pair[1] if transpose else pair[0]

    @property
    def matrix(self) -> sp.csr_matrix:
        """The system matrix as a scipy CSR matrix (float32), rows ``(angle, detector)``."""
        return self._scipy_matrix(False)

    def _torch_matrix(self, dtype: torch.dtype, device, transpose: bool) -> torch.Tensor:
        key = (dtype, torch.device(device), transpose)
        if key not in self._torch:
            m = self._scipy_matrix(transpose)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR is beta"
                self._torch[key] = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int32)),
                    torch.from_numpy(m.indices),
                    torch.from_numpy(m.data).to(dtype),
                    size=m.shape,
                ).to(device)
        return self._torch[key]

    def _check(self, x: torch.Tensor, name: str, last: tuple[int, int]) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got dtype {x.dtype}")
        if x.ndim != 4 or tuple(x.shape[-2:]) != last:
            raise ValueError(
                f"{name} must have shape (B, C, {last[0]}, {last[1]}), got {tuple(x.shape)}"
            )

    def _project(self, x: torch.Tensor, transpose: bool, out: tuple[int, int]) -> torch.Tensor:
        b, c = x.shape[:2]
        if self._free is not None:
            flat = x.reshape(b * c, *x.shape[2:]).contiguous()
            return MatrixFreeApply.apply(flat, self._free, transpose).reshape(b, c, *out)
        x2d = x.reshape(b * c, -1).t().contiguous()
        y2d = _Apply.apply(x2d, self, transpose)
        return y2d.t().reshape(b, c, *out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sinogram :math:`Rx`, shape ``(B, C, n_angles, n_detectors)``."""
        self._check(x, "x", (self.image_size, self.image_size))
        return self._project(x, False, self.sinogram_shape)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-projection :math:`R^* y = R^T y`, shape ``(B, C, N, N)``."""
        self._check(y, "y", self.sinogram_shape)
        return self._project(y, True, (self.image_size, self.image_size))


class ParallelBeamCT(RayMatrixOperator):
    """Discrete parallel-beam ray transform :math:`R` (thesis §2.5.1), Joseph's method.

    Parameters
    ----------
    image_size: side ``N`` of the square image (``(B, C, N, N)`` inputs).
    n_angles: number of views, uniform in :math:`[0, r)` with :math:`r` = ``angular_range``;
        ignored if ``angles`` is given.
    n_detectors: detector bins; default :math:`\\lceil\\sqrt2\\,N p/\\Delta s\\rceil`.
    angles: explicit view angles in radians (1-D, finite).
    detector_spacing: :math:`\\Delta s`, in the same length unit as ``pixel_size``.
    pixel_size: pixel side :math:`p`. ``(2N, pixel_size=0.5)`` is a finer grid on the same
        square as ``(N, pixel_size=1)``; sinograms of both are in the same units.
    cache: read/write the disk cache (``$SPINV_CACHE/ct``); the matrix is always memoised
        in-process.
    matrix_free: apply Joseph's weights chunk by chunk without storing the matrix
        (:mod:`spinv.operators.ct_matrix_free`; same operator, exact adjoint); ``None``
        (default) chooses it only when the matrix would exceed ``SPINV_MAX_OPERATOR_GIB``.
    angular_range: the arc :math:`r` covered by the views (default :math:`\\pi`, a full
        parallel-beam scan; less is limited-angle CT); FBP weights every view by
        :math:`r / n_a`.

    Sinograms have shape ``(B, C, n_angles, n_detectors)``.
    """

    cache_prefix = "parallel"

    def __init__(
        self,
        image_size: int,
        n_angles: int = 50,
        n_detectors: int | None = None,
        angles=None,
        detector_spacing: float = 1.0,
        pixel_size: float = 1.0,
        cache: bool = True,
        angular_range: float = math.pi,
        matrix_free: bool | None = None,
    ) -> None:
        super().__init__()
        if not _is_int(image_size) or image_size < 2:
            raise ValueError(f"image_size must be an int >= 2, got {image_size!r}")
        for name, v in (("detector_spacing", detector_spacing), ("pixel_size", pixel_size),
                        ("angular_range", angular_range)):
            if not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if angles is None:
            if not _is_int(n_angles) or n_angles < 1:
                raise ValueError(f"n_angles must be a positive int, got {n_angles!r}")
            angles = torch.linspace(0, angular_range, n_angles + 1, dtype=torch.float64)[:-1]
        angles = torch.as_tensor(np.asarray(angles, dtype=np.float64)).reshape(-1)
        if angles.numel() == 0 or not bool(torch.isfinite(angles).all()):
            raise ValueError("angles must be a non-empty 1-D sequence of finite radians")
        if n_detectors is None:
            n_detectors = math.ceil(math.sqrt(2) * image_size * pixel_size / detector_spacing)
        if not _is_int(n_detectors) or n_detectors < 1:
            raise ValueError(f"n_detectors must be a positive int, got {n_detectors!r}")
        self.image_size = int(image_size)
        self.n_angles = int(angles.numel())
        self.n_detectors = int(n_detectors)
        self.detector_spacing = float(detector_spacing)
        self.pixel_size = float(pixel_size)
        self.angular_range = float(angular_range)
        self.register_buffer("angles", angles.to(torch.float32), persistent=False)
        self._angles64 = angles.numpy().copy()
        if matrix_free is None:  # automatic: the matrix only where it fits the memory budget
            matrix_free = use_matrix_free(self.image_size, self.n_angles, self.n_detectors)
        free = JosephMatrixFree(self.image_size, self._angles64, self.n_detectors,
                                self.detector_spacing, self.pixel_size) if matrix_free else None
        self._setup_matrix(cache, free)

    # ------------------------------------------------------------------ geometry and matrix
    def _geometry_key(self) -> str:
        desc = {
            "version": MATRIX_FORMAT_VERSION,
            "method": "joseph",
            "image_size": self.image_size,
            "n_detectors": self.n_detectors,
            "detector_spacing": self.detector_spacing.hex(),
            "pixel_size": self.pixel_size.hex(),
            "angles_sha256": hashlib.sha256(self._angles64.tobytes()).hexdigest(),
        }
        return json.dumps(desc, sort_keys=True)

    def _build_matrix(self) -> sp.csr_matrix:
        return build_joseph_matrix(self.image_size, self._angles64, self.n_detectors,
                                   self.detector_spacing, self.pixel_size)

    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """Filtered back-projection :math:`\\frac{\\pi}{n_a p^2} R^*(h * y)` (see
        :mod:`spinv.operators.fbp`); ``filter`` in ``"ramp"``, ``"shepp-logan"``, ``"hann"``.

        Assumes the views cover :math:`[0, r)` uniformly, :math:`r` = ``angular_range``
        (the default angles); the weight :math:`\\pi/n_a` becomes :math:`r/n_a`.
        """
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
        self._check(y, "y", self.sinogram_shape)
        scale = self.angular_range / (self.n_angles * self.pixel_size**2)
        return self.adjoint(filter_sinogram(y, filter)) * scale

    analytic_name = "fbp"

    def analytic(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """The analytic reconstruction of CT data: :meth:`fbp` (ramp filter by default)."""
        return self.fbp(y, filter=filter)

    def refined(self, upsample: int) -> ParallelBeamCT:
        """The same square, views and detector bins on a grid ``upsample`` times finer
        (pixel side ``pixel_size / upsample``): its sinograms are directly comparable with this
        operator's, which is how :func:`simulate_ct` avoids the inverse crime."""
        if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 1:
            raise ValueError(f"upsample must be a positive int, got {upsample!r}")
        return ParallelBeamCT(
            self.image_size * upsample, n_detectors=self.n_detectors,
            angles=self._angles64.copy(), detector_spacing=self.detector_spacing,
            pixel_size=self.pixel_size / upsample, cache=self._use_cache,
            angular_range=self.angular_range,
        )

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, n_angles={self.n_angles}, "
            f"n_detectors={self.n_detectors}, pixel_size={self.pixel_size}, "
            f"detector_spacing={self.detector_spacing}"
        )


def simulate_ct(
    image: torch.Tensor,
    n_angles: int = 50,
    photons: float | None = DEFAULT_PHOTONS,
    mu: float | None = None,
    upsample: int = 2,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    eta: float = DEFAULT_ETA,
    mode: str = "bilinear",
    n_detectors: int | None = None,
) -> torch.Tensor:
    """Low-dose sinogram of ``image`` for ``ParallelBeamCT(N, n_angles)``, avoiding the
    inverse crime by projecting on a grid ``upsample`` times finer (thesis §2.5.1 noise model).

    The ``(B, C, N, N)`` image is interpolated (``mode`` ``"bilinear"`` or ``"nearest"``, pixel
    centres aligned) to ``upsample * N`` pixels of side ``1 / upsample``, projected with
    ``ParallelBeamCT(upsample * N, n_angles, n_detectors=ceil(sqrt(2) N), pixel_size=1/upsample)``
    -- the same detector bins as the coarse operator -- and, unless ``photons`` is ``None``,
    corrupted by :func:`spinv.operators.noise.poisson_post_log` with ``mu`` (default
    :func:`~spinv.operators.noise.default_mu` of ``N``). Pass ``n_detectors`` if the coarse
    operator does not use the default count (unit detector spacing is assumed).
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] != image.shape[-2]:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a (B, C, N, N) tensor, got {shape}")
    if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 1:
        raise ValueError(f"upsample must be a positive int, got {upsample!r}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    n = int(image.shape[-1])
    n_det = math.ceil(math.sqrt(2) * n) if n_detectors is None else n_detectors
    op = ParallelBeamCT(n * upsample, n_angles, n_detectors=n_det, pixel_size=1.0 / upsample)
    sino = fine_grid_sinogram(image, op, mode)
    if photons is None:
        return sino
    mu = default_mu(n) if mu is None else mu
    return poisson_post_log(sino, mu, photons=photons, eta=eta, seed=seed, generator=generator)


def fine_grid_sinogram(
    image: torch.Tensor, fine: ParallelBeamCT, mode: str = "bilinear"
) -> torch.Tensor:
    """Noiseless sinogram of the ``(B, C, N, N)`` ``image`` projected with ``fine``, an operator
    on a grid ``fine.image_size / N`` times finer (e.g. :meth:`ParallelBeamCT.refined`): the
    image is interpolated there first (``mode`` ``"bilinear"``, pixel centres aligned, or
    ``"nearest"``); with ``fine.image_size == N`` it is projected as it is."""
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    n = int(image.shape[-1])
    upsample = fine.image_size // n
    if upsample < 1 or fine.image_size != upsample * n:
        raise ValueError(
            f"image: side {n} does not divide the fine grid's side {fine.image_size}"
        )
    x = image
    if upsample > 1:
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        x = F.interpolate(image, scale_factor=upsample, mode=mode, **kwargs)
    return fine.to(image.device)(x)
