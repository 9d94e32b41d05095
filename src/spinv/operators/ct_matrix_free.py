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
that of one chunk of indices and weights (``chunk_bytes``, 64 MiB by default) plus the chunks
kept for the next call (``cache_bytes``, a quarter of the budget by default; 16 bytes per
sample, against the matrix's 40 per nonzero); time grows like :math:`n_a n_d N`, as for the
matrix.

:func:`use_matrix_free` is the selection rule of ``ParallelBeamCT(matrix_free=None)``: the
matrix path when its estimated memory is within :func:`~spinv.operators.ct_matrix.
operator_memory_limit` (``SPINV_MAX_OPERATOR_GIB``), else this one if a chunk of one view
fits, else the geometry is refused as before. Written here because no
installable library (scikit-image rotates images, astra needs its own geometry objects and
gives no exact adjoint on the CPU) applies these exact weights without a matrix.
"""

from __future__ import annotations

import math

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
    ``chunk_bytes`` bounds the temporaries of one chunk of views; ``cache_bytes`` (default: a
    quarter of :func:`~spinv.operators.ct_matrix.operator_memory_limit`) is how much of the
    computed indices and weights (16 bytes per sample) are kept for the next call -- the
    chunks that fit are not recomputed, the others are, every call.
    """

    def __init__(
        self,
        image_size: int,
        angles: np.ndarray,
        n_detectors: int,
        detector_spacing: float = 1.0,
        pixel_size: float = 1.0,
        chunk_bytes: int = 64 * 2**20,
        cache_bytes: int | None = None,
    ) -> None:
        self.n = int(image_size)
        self.cache_bytes = operator_memory_limit() // 4 if cache_bytes is None else cache_bytes
        self._cache: dict = {}
        self._cached_bytes = 0
        self.angles = np.asarray(angles, dtype=np.float64).reshape(-1)
        self.n_detectors = int(n_detectors)
        self.detector_spacing = float(detector_spacing)
        self.pixel_size = float(pixel_size)
        per_view = self.n_detectors * self.n * _BYTES_PER_SAMPLE
        self.chunk = max(1, int(chunk_bytes) // per_view)
        steep = np.abs(np.sin(self.angles)) >= np.abs(np.cos(self.angles))
        # views stepping along columns (interpolating rows) and the others, as index arrays
        self.groups = [(True, np.flatnonzero(steep)), (False, np.flatnonzero(~steep))]
        # zero rows above / below the image so that every sampled row exists (no clamping)
        lo, hi = 0.0, float(self.n - 1)
        for flag, views in self.groups:
            if len(views):
                base, lin = self._affine(self.angles[views], flag, "cpu")
                lo = min(lo, float(base.min() + lin.min(1).values.min()))
                hi = max(hi, float(base.max() + lin.max(1).values.max()))
        self.pad_top = int(math.floor(-lo)) + 2
        self.rows = self.pad_top + int(math.floor(hi)) + 3

    def _affine(self, angles: np.ndarray, steep: bool, device) -> tuple:
        """The fractional row :math:`f_{akj} = b_{ak} + l_{aj}` as ``(b, l)`` (float64), the
        formulas of :func:`build_joseph_matrix`: steep views :math:`f = c - s_k/(p\\sin)
        + (j - c)\\cot`, the others (on the transposed image) :math:`f = c + s_k/(p\\cos)
        + (j - c)\\tan`."""
        n, p, nd = self.n, self.pixel_size, self.n_detectors
        c = (n - 1) / 2.0
        th = torch.as_tensor(angles, dtype=torch.float64, device=device)
        k = torch.arange(nd, dtype=torch.float64, device=device)
        j = torch.arange(n, dtype=torch.float64, device=device)
        s = (k - (nd - 1) / 2.0) * self.detector_spacing
        trig, other = (torch.sin(th), torch.cos(th)) if steep else (torch.cos(th), torch.sin(th))
        sign = -1.0 if steep else 1.0
        base = c + sign * s[None, :] / (trig * p)[:, None]
        return base, (j - c)[None, :] * (other / trig)[:, None]

    def _samples(self, angles: np.ndarray, steep: bool, device) -> tuple:
        """Flat indices (int64; int32 arithmetic where it fits) of the first of the two
        interpolated pixels in the padded image and the weights (float32) of both, shape
        ``(views, n_d * N)``.

        :math:`f = b + l` is split as :math:`(\\lfloor b\\rfloor + \\lfloor l\\rfloor) +
        (\\{b\\} + \\{l\\})`: the integer parts and the row offsets come from small float64
        vectors, the full-size work is the float32 sum of the fractional parts (in [0, 2), so
        its rounding error is ~1e-7, that of the float32 weights) and its carry."""
        n = self.n
        base, lin = self._affine(angles, steep, device)
        bi, li = torch.floor(base), torch.floor(lin)
        jj = torch.arange(n, dtype=torch.float64, device=device)
        itype = torch.int32 if self.rows * n < 2**31 else torch.long
        row = ((bi + self.pad_top) * n).to(itype)[:, :, None]  # (v, n_d, 1)
        col = (li * n + jj).to(itype)[:, None, :]  # (v, 1, N)
        t = (base - bi).to(torch.float32)[:, :, None] + (lin - li).to(torch.float32)[:, None, :]
        carry = t >= 1.0
        t.sub_(carry.to(torch.float32))
        idx = torch.add(row, col).add_(carry.to(itype).mul_(n)).to(torch.long)  # aten wants int64
        weight = (self.pixel_size / torch.as_tensor(
            np.abs(np.sin(angles) if steep else np.cos(angles)), device=device)).to(
            torch.float32)[:, None, None]
        w1 = t.mul_(weight)
        w0 = weight - w1
        views = len(angles)
        return idx.reshape(views, -1), w0.reshape(views, -1), w1.reshape(views, -1)

    def _chunks(self, device):
        """``(steep, views, (idx, w0, w1))`` per chunk, from the cache where it holds them."""
        for steep, views in self.groups:
            for start in range(0, len(views), self.chunk):
                part = views[start:start + self.chunk]
                key = (steep, start, str(device))
                got = self._cache.get(key)
                if got is None:
                    got = self._samples(self.angles[part], steep, device)
                    size = sum(t.numel() * t.element_size() for t in got)
                    if self._cached_bytes + size <= self.cache_bytes:
                        self._cache[key] = got
                        self._cached_bytes += size
                yield steep, part, got

    def __getstate__(self) -> dict:  # copies carry the geometry, not the cache
        state = self.__dict__.copy()
        state["_cache"], state["_cached_bytes"] = {}, 0
        return state

    def _padded(self, x2d: torch.Tensor, steep: bool) -> torch.Tensor:
        img = x2d if steep else x2d.transpose(-2, -1)
        pads = (0, 0, self.pad_top, self.rows - self.pad_top - self.n)
        return torch.nn.functional.pad(img, pads).reshape(img.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, N, N)`` images to ``(M, n_angles, n_detectors)`` sinograms."""
        m, n, nd = x.shape[0], self.n, self.n_detectors
        out = x.new_zeros(m, len(self.angles), nd)
        padded = {flag: self._padded(x, flag) for flag, views in self.groups if len(views)}
        for steep, views, (idx, w0, w1) in self._chunks(x.device):
            z = padded[steep]
            vals = z[:, idx] * w0.to(x.dtype)
            vals += z[:, n:][:, idx] * w1.to(x.dtype)  # the next row: index + N
            out[:, torch.as_tensor(views, device=x.device)] = vals.reshape(
                m, len(views), nd, n).sum(-1)
        return out

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(M, n_angles, n_detectors)`` sinograms to ``(M, N, N)`` back-projections."""
        m, n, rows = y.shape[0], self.n, self.rows
        acc = {steep: y.new_zeros(m, rows * n) for steep in (True, False)}
        for steep, views, (idx, w0, w1) in self._chunks(y.device):
            yv = y[:, torch.as_tensor(views, device=y.device)].unsqueeze(-1)  # (m, v, nd, 1)
            flat = idx.reshape(-1)
            for target, w in ((acc[steep], w0), (acc[steep][:, n:], w1)):
                contrib = yv * w.to(y.dtype).reshape(len(views), self.n_detectors, n)
                target.index_add_(1, flat, contrib.reshape(m, -1))
        top = self.pad_top
        out = acc[True].reshape(m, rows, n)[:, top:top + n]
        return out + acc[False].reshape(m, rows, n)[:, top:top + n].transpose(-2, -1)

    def memory_bytes(self) -> int:
        """Bytes of the temporaries of one chunk plus the cached chunks."""
        return self.chunk * self.n_detectors * self.n * _BYTES_PER_SAMPLE + self._cached_bytes


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

