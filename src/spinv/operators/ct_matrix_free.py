"""Matrix-free parallel-beam ray transform: Joseph's weights computed view-chunk by view-chunk.

The cached sparse matrix of :class:`spinv.operators.ParallelBeamCT` stores about
:math:`1.25\\,n_a n_d N` nonzeros (40 bytes each over its life, see
:mod:`spinv.operators.ct_matrix`): 13 GiB for a LoDoPaB-like geometry (512², 1000 views, 513
detectors). :class:`JosephMatrixFree` applies the *same* operator without storing it: for a
chunk of views it recomputes, in float64 and from the same formulas as
:func:`~spinv.operators.ct_matrix.build_joseph_matrix`, the interpolation rows ``lo`` and
fractions ``t`` of every (view, detector, step) and

.. math:: (Rx)_{a,k} = w_a \\sum_j \\big[(1-t_{akj})\\,x_{\\ell_{akj},\\,j}
          + t_{akj}\\,x_{\\ell_{akj}+1,\\,j}\\big],
          \\qquad w_a = p / \\max(|\\sin\\theta_a|, |\\cos\\theta_a|),

(rows and columns swapped for the views with :math:`|\\cos\\theta_a| > |\\sin\\theta_a|`;
pixels outside the image are zero) -- a gather. The adjoint scatters the same products with
``index_add_``, so :math:`\\langle Rx, y\\rangle = \\langle x, R^*y\\rangle` holds to float32
rounding and the result equals the matrix path up to the order of the float32 sums. Memory is
that of one chunk of indices and weights (``chunk_bytes``, 64 MiB by default) plus the
sinogram; time grows like :math:`n_a n_d N`, as for the matrix.

:func:`use_matrix_free` is the selection rule of ``ParallelBeamCT(matrix_free=None)``: the
matrix path when its estimated memory is within :func:`~spinv.operators.ct_matrix.
operator_memory_limit` (``SPINV_MAX_OPERATOR_GIB``), else this one if a chunk of one view
fits, else the geometry is refused as before. Written here because no
installable library (scikit-image rotates images, astra needs its own geometry objects and
gives no exact adjoint on the CPU) applies these exact weights without a matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from spinv.operators.ct_matrix import estimate_operator_bytes, operator_memory_limit

__all__ = [
    "JosephMatrixFree", "MatrixFreeApply", "matrix_fits", "matrix_free_fits", "use_matrix_free",
]

#: bytes of temporaries per (view, detector, step) in a chunk: two int64 indices, two float32
#: weights, float64 fractions and the gathered float32 values
_BYTES_PER_SAMPLE = 48


def matrix_fits(image_size: int, n_angles: int, n_detectors: int) -> bool:
    """Whether the cached matrix of this geometry fits the operator memory budget."""
    return estimate_operator_bytes(image_size, n_angles, n_detectors) <= operator_memory_limit()


def matrix_free_fits(image_size: int, n_angles: int, n_detectors: int) -> bool:
    """Whether the matrix-free path fits the budget with chunks of one view: its temporaries
    plus an image and a sinogram, twice (input and output, float32)."""
    need = n_detectors * image_size * _BYTES_PER_SAMPLE \
        + 8 * (image_size**2 + n_angles * n_detectors)
    return need <= operator_memory_limit()


def use_matrix_free(image_size: int, n_angles: int, n_detectors: int) -> bool:
    """The automatic choice: matrix-free where the matrix does not fit the budget but the
    matrix-free path does; where neither fits the matrix path refuses the geometry
    (:func:`~spinv.operators.ct_matrix.check_operator_memory`)."""
    return not matrix_fits(image_size, n_angles, n_detectors) and \
        matrix_free_fits(image_size, n_angles, n_detectors)


class JosephMatrixFree:
    """Joseph's-method ray transform and its exact adjoint without a stored matrix.

    Parameters are those of :func:`spinv.operators.ct_matrix.build_joseph_matrix`;
    ``chunk_bytes`` bounds the temporaries of one chunk of views.
    """

    def __init__(
        self,
        image_size: int,
        angles: np.ndarray,
        n_detectors: int,
        detector_spacing: float = 1.0,
        pixel_size: float = 1.0,
        chunk_bytes: int = 64 * 2**20,
    ) -> None:
        self.n = int(image_size)
        self.angles = np.asarray(angles, dtype=np.float64).reshape(-1)
        self.n_detectors = int(n_detectors)
        self.detector_spacing = float(detector_spacing)
        self.pixel_size = float(pixel_size)
        per_view = self.n_detectors * self.n * _BYTES_PER_SAMPLE
        self.chunk = max(1, int(chunk_bytes) // per_view)
        steep = np.abs(np.sin(self.angles)) >= np.abs(np.cos(self.angles))
        # views stepping along columns (interpolating rows) and the others, as index arrays
        self.groups = [(True, np.flatnonzero(steep)), (False, np.flatnonzero(~steep))]

    def _samples(self, angles: np.ndarray, steep: bool, device) -> tuple:
        """Indices of the first of the two interpolated pixels in the padded image and the
        weights of both, shape ``(views, n_d * N)``, for views that step along columns
        (``steep``) or, on the transposed image, along rows.

        The fractional row is affine in ``(k, j)``, :math:`f = a + b k + c j` with the
        coefficients of :func:`build_joseph_matrix`'s formulas, in float64; it is clamped to
        :math:`[-1, N]`, which changes nothing (both pixels are outside the image either way,
        and the padded image is zero there)."""
        n, p, nd = self.n, self.pixel_size, self.n_detectors
        c = (n - 1) / 2.0
        th = torch.as_tensor(angles, dtype=torch.float64, device=device)
        k = torch.arange(nd, dtype=torch.float64, device=device)
        j = torch.arange(n, dtype=torch.float64, device=device)
        s = (k - (nd - 1) / 2.0) * self.detector_spacing
        if steep:  # frac = c - (s - (j - c) p cos) / sin / p = c - s / (p sin) + (j - c) cot
            trig, other, sign = torch.sin(th), torch.cos(th), -1.0
        else:  # frac = c + (s - (c - j) p sin) / cos / p = c + s / (p cos) + (j - c) tan
            trig, other, sign = torch.cos(th), torch.sin(th), 1.0
        frac = (c + sign * s[None, :, None] / (trig * p)[:, None, None]) \
            + ((j - c)[None, None, :] * (other / trig)[:, None, None])
        frac.clamp_(-1.0, float(n))
        lo = torch.floor(frac)
        t = frac.sub_(lo)
        # padded image: row r of the image is row r + 1; rows 0, n + 1 and n + 2 are zero
        idx0 = lo.to(torch.long).add_(1).mul_(n).add_(torch.arange(n, device=device))
        weight = (p / trig.abs())[:, None, None]
        w1 = (t * weight).to(torch.float32)
        w0 = ((1.0 - t).mul_(weight)).to(torch.float32)
        views = len(angles)
        return idx0.reshape(views, -1), w0.reshape(views, -1), w1.reshape(views, -1)

    def _chunks(self):
        for steep, views in self.groups:
            for start in range(0, len(views), self.chunk):
                yield steep, views[start:start + self.chunk]

    def _padded(self, x2d: torch.Tensor, steep: bool) -> torch.Tensor:
        img = x2d if steep else x2d.transpose(-2, -1)
        return torch.nn.functional.pad(img, (0, 0, 1, 2)).reshape(img.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, N, N)`` images to ``(M, n_angles, n_detectors)`` sinograms."""
        m, n, nd = x.shape[0], self.n, self.n_detectors
        out = x.new_zeros(m, len(self.angles), nd)
        padded = {True: self._padded(x, True), False: self._padded(x, False)}
        for steep, views in self._chunks():
            idx0, w0, w1 = self._samples(self.angles[views], steep, x.device)
            z = padded[steep]
            vals = z[:, idx0] * w0.to(x.dtype) + z[:, idx0 + n] * w1.to(x.dtype)
            out[:, torch.as_tensor(views, device=x.device)] = vals.reshape(
                m, len(views), nd, n).sum(-1)
        return out

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(M, n_angles, n_detectors)`` sinograms to ``(M, N, N)`` back-projections."""
        m, n = y.shape[0], self.n
        acc = {steep: y.new_zeros(m, (n + 3) * n) for steep in (True, False)}
        for steep, views in self._chunks():
            idx0, w0, w1 = self._samples(self.angles[views], steep, y.device)
            yv = y[:, torch.as_tensor(views, device=y.device)].unsqueeze(-1)  # (m, v, nd, 1)
            for idx, w in ((idx0, w0), (idx0 + n, w1)):
                contrib = (yv * w.to(y.dtype).reshape(len(views), self.n_detectors, n))
                acc[steep].index_add_(1, idx.reshape(-1), contrib.reshape(m, -1))
        out = acc[True].reshape(m, n + 3, n)[:, 1:-2]
        return out + acc[False].reshape(m, n + 3, n)[:, 1:-2].transpose(-2, -1)

    def memory_bytes(self) -> int:
        """Bytes of temporaries of one chunk (the operator itself stores only its angles)."""
        return self.chunk * self.n_detectors * self.n * _BYTES_PER_SAMPLE


class MatrixFreeApply(torch.autograd.Function):
    """``y = R x`` (``transpose=False``) or ``R^* y`` with :class:`JosephMatrixFree`; the
    backward applies the other one, so autograd uses the exact adjoint."""

    @staticmethod
    def forward(ctx, x, op: JosephMatrixFree, transpose: bool):
        ctx.op, ctx.transpose = op, transpose
        return op.adjoint(x) if transpose else op.forward(x)

    @staticmethod
    def backward(ctx, grad):
        return MatrixFreeApply.apply(grad.contiguous(), ctx.op, not ctx.transpose), None, None

