"""Orthogonal, periodised 2-D discrete wavelet transform in torch.

The sparsifying transform :math:`A = W` of the wavelet-type regulariser in thesis §1.2.1
(Eq. 1.3 with :math:`Q(Wu)`); Appendix 1.C.2 uses :math:`\\|W\\| = 1` for an orthogonal ``W``.

One level of the 1-D transform of a length-:math:`n` signal (``n`` even) is the orthogonal
matrix :math:`M_n` with rows

.. math::
    (M_n x)_k = \\sum_j h_j\\, x_{(2k + L/2 - j) \\bmod n},\\qquad
    (M_n x)_{n/2+k} = \\sum_j g_j\\, x_{(2k + L/2 - j) \\bmod n},

where :math:`h`, :math:`g` are the decomposition low/high-pass filters of length :math:`L`
(``pywt.Wavelet(name).dec_lo`` / ``dec_hi``). This is exactly PyWavelets' ``mode="periodization"``.
The 2-D level acts as :math:`X \\mapsto M_H X M_W^\\top`, which places the approximation in the
top-left block and the details where :func:`pywt.coeffs_to_array` puts them
(``'ad'`` top-right, ``'da'`` bottom-left, ``'dd'`` bottom-right). ``J`` levels recurse on the
approximation block. Since each :math:`M_n` is orthogonal, :math:`W^\\top W = I` and
:math:`\\|Wx\\| = \\|x\\|` up to float rounding; :meth:`WaveletTransform.adjoint` is the inverse.

>>> import torch
>>> W = WaveletTransform(levels=2, wavelet="db4")
>>> x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
>>> c = W(x)
>>> c.shape
torch.Size([2, 1, 32, 32])
>>> bool(torch.allclose(W.adjoint(c), x)), bool(torch.allclose(c.norm(), x.norm()))
(True, True)
"""

from __future__ import annotations

import numpy as np
import pywt
import torch

from spinv.operators.base import LinearOperator


def analysis_matrix(n: int, wavelet: str = "db4") -> np.ndarray:
    """The one-level periodised analysis matrix :math:`M_n` (float64, ``(n, n)``), orthogonal.

    >>> M = analysis_matrix(8, "haar")
    >>> bool(np.allclose(M @ M.T, np.eye(8)))
    True
    """
    if not isinstance(n, int) or n < 2 or n % 2:
        raise ValueError(f"n={n!r}: expected an even integer >= 2")
    w = pywt.Wavelet(wavelet)
    if not w.orthogonal:
        raise ValueError(f"wavelet={wavelet!r}: expected an orthogonal wavelet (e.g. 'db4')")
    lo = np.asarray(w.dec_lo, dtype=np.float64)
    hi = np.asarray(w.dec_hi, dtype=np.float64)
    length = lo.size
    half = n // 2
    mat = np.zeros((n, n), dtype=np.float64)
    rows = np.arange(half)[:, None]
    taps = np.arange(length)[None, :]
    cols = (2 * rows + length // 2 - taps) % n  # (half, L)
    for k in range(half):
        np.add.at(mat[k], cols[k], lo)
        np.add.at(mat[half + k], cols[k], hi)
    return mat


class WaveletTransform(LinearOperator):
    """Orthogonal periodised 2-D DWT :math:`W` with ``levels`` levels, packed in one array.

    ``forward`` maps ``(B, C, H, W)`` (real or complex) to coefficients of the same shape, laid
    out like ``pywt.coeffs_to_array(pywt.wavedec2(x, wavelet, mode="periodization",
    level=levels))[0]``; ``adjoint`` is the inverse transform. ``H`` and ``W`` must be divisible
    by ``2**levels``. Runs on the input's device and dtype (matrices are cached per size).
    """

    def __init__(self, levels: int = 3, wavelet: str = "db4") -> None:
        super().__init__()
        if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
            raise ValueError(f"levels={levels!r}: expected an integer >= 1")
        try:
            w = pywt.Wavelet(wavelet)
        except ValueError as exc:
            raise ValueError(f"wavelet={wavelet!r}: not a PyWavelets wavelet name") from exc
        if not w.orthogonal:
            raise ValueError(f"wavelet={wavelet!r}: expected an orthogonal wavelet (e.g. 'db4')")
        self.levels = levels
        self.wavelet = wavelet
        self._cache: dict[tuple, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"levels={self.levels}, wavelet={self.wavelet!r}"

    def _matrix(self, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (n, dtype, str(device))
        mat = self._cache.get(key)
        if mat is None:
            mat = torch.as_tensor(analysis_matrix(n, self.wavelet)).to(device=device, dtype=dtype)
            self._cache[key] = mat
        return mat

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"x.shape={tuple(x.shape)}: expected (..., H, W)")
        h, w = x.shape[-2:]
        f = 2**self.levels
        if h % f or w % f:
            raise ValueError(
                f"x.shape={tuple(x.shape)}: H and W must be divisible by 2**levels={f}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Analysis :math:`c = Wx`."""
        self._check(x)
        out = x.clone()
        h, w = x.shape[-2:]
        for _ in range(self.levels):
            mh = self._matrix(h, x.dtype, x.device)
            mw = self._matrix(w, x.dtype, x.device)
            out[..., :h, :w] = mh @ out[..., :h, :w] @ mw.transpose(0, 1)
            h, w = h // 2, w // 2
        return out

    def adjoint(self, c: torch.Tensor) -> torch.Tensor:
        """Synthesis :math:`W^\\top c = W^{-1} c`."""
        self._check(c)
        out = c.clone()
        hs = [c.shape[-2] // 2**j for j in range(self.levels)]
        ws = [c.shape[-1] // 2**j for j in range(self.levels)]
        for h, w in zip(reversed(hs), reversed(ws), strict=True):
            mh = self._matrix(h, c.dtype, c.device)
            mw = self._matrix(w, c.dtype, c.device)
            out[..., :h, :w] = mh.transpose(0, 1) @ out[..., :h, :w] @ mw
        return out

    inverse = adjoint

    def norm(self, *args, **kwargs) -> float:  # noqa: D401 - exact value
        """Exactly 1 (orthogonal transform)."""
        return 1.0
