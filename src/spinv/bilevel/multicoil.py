"""The lower level of bilevel sampling learning for multi-coil (SENSE) MRI: one pattern
:math:`S=\\mathrm{diag}(s)` shared by all coils (issue 17.2).

With coil maps :math:`C_c` (:class:`~spinv.operators.mri_multicoil.MultiCoilFourier`) and fully
sampled multi-coil k-space :math:`y_c`, Eq. (1.3) becomes

.. math:: E_y(u;S,\\alpha)=\\tfrac12\\sum_c\\|S(FC_cu-y_c)\\|^2+\\alpha\\sum_i\\rho(|Au|_i)
          +\\tfrac\\varepsilon2\\|u\\|^2 ,

so, with :math:`r_c = FC_cu-y_c`, the derivatives of App. 1.D read

* :math:`D_uE=\\sum_c\\overline{C_c}F^{-1}S^2r_c+\\alpha A^*(\\phi(|Au|)Au)+\\varepsilon u`,
* :math:`D_u^2E\\,w=\\sum_c\\overline{C_c}F^{-1}S^2FC_cw+(\\text{regulariser, as single-coil})
  +\\varepsilon w`,
* :math:`(D_{s,u}E\\,w)_i=2s_i\\sum_c\\mathrm{Re}(\\overline{(FC_cw)_i}\\,(r_c)_i)` (the coils'
  single-coil terms summed: the pattern is shared).

Everything else (regulariser terms, the :math:`\\alpha` derivative, the k-space preconditioner,
which stays an SPD approximation for maps with :math:`\\sum_c|C_c|^2\\approx 1`) is the
single-coil :class:`~spinv.bilevel.lower_level.LowerLevel`'s. The lower level is solved by
Newton-CG (``SolverOptions(method="newton")``); the PDHG lower-level solver and the closed form of
the regulariser ``"none"`` are single-coil only. The implicit gradient is checked against finite
differences in ``tests/bilevel/test_multicoil.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinv.bilevel.lower_level import LowerLevel, Regulariser, _DirectionalGradientOp, inner

__all__ = ["MultiCoilLowerLevel"]


@dataclass
class MultiCoilLowerLevel(LowerLevel):
    """:class:`LowerLevel` for multi-coil data ``y`` ``(B, N_c, H, W)`` (centred k-space) and
    coil ``maps`` ``(N_c, H, W)`` (module docstring)."""

    maps: torch.Tensor | None = None

    def __post_init__(self):
        if not torch.is_tensor(self.y) or not self.y.is_complex() or self.y.ndim != 4:
            raise TypeError("y: expected a complex tensor of shape (B, N_c, H, W)")
        if self.maps is None or tuple(self.maps.shape) != tuple(self.y.shape[1:]):
            got = None if self.maps is None else tuple(self.maps.shape)
            raise ValueError(f"maps: expected shape {tuple(self.y.shape[1:])} (N_c, H, W), got "
                             f"{got}")
        if not self.eps > 0:
            raise ValueError(f"eps={self.eps!r}: expected a positive float")
        if self.reg.is_none:
            raise ValueError("reg: the regulariser 'none' has no multi-coil closed form here; "
                             "use tv, wavelet, h1 or dtv")
        self.maps = self.maps.to(device=self.y.device, dtype=self.y.dtype)
        self.y_fft = torch.fft.ifftshift(self.y, dim=(-2, -1))

    @classmethod
    def from_images(cls, u_true: torch.Tensor, maps: torch.Tensor, reg: Regulariser,
                    noise: float = 0.0, eps: float = 1e-6, seed: int = 0,
                    dtype: torch.dtype = torch.complex128) -> MultiCoilLowerLevel:
        """Fully sampled coil data :math:`y_c=FC_cu^*+\\eta_c`, complex Gaussian noise of
        standard deviation ``noise`` per real component (as the single-coil
        :meth:`LowerLevel.from_images`)."""
        u = u_true.to(dtype)
        k = torch.fft.fftshift(torch.fft.fft2(u * maps.to(dtype), norm="ortho"), dim=(-2, -1))
        if noise > 0:
            gen = torch.Generator().manual_seed(seed)
            rdt = torch.float64 if dtype == torch.complex128 else torch.float32
            n = torch.complex(torch.randn(k.shape, generator=gen, dtype=rdt),
                              torch.randn(k.shape, generator=gen, dtype=rdt))
            k = k + noise * n.to(k.device)
        return cls(y=k, reg=reg, eps=eps, u_true=u, maps=maps)

    # ---- coil helpers ----------------------------------------------------------------------
    def _coil_fft(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`(FC_cu)_c` in FFT order, ``(B, N_c, H, W)``."""
        return torch.fft.fft2(u * self.maps, norm="ortho")

    def _combine(self, k: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_c\\overline{C_c}F^{-1}k_c`, ``(B, 1, H, W)``."""
        return (torch.fft.ifft2(k, norm="ortho") * self.maps.conj()).sum(dim=1, keepdim=True)

    def subset(self, index) -> MultiCoilLowerLevel:
        ut = None if self.u_true is None else self.u_true[index]
        reg = self.reg
        if reg.kind == "dtv":
            reg = Regulariser("dtv", _DirectionalGradientOp(reg.op.xi[index]), reg.rho)
        return MultiCoilLowerLevel(y=self.y[index], reg=reg, eps=self.eps, u_true=ut,
                                   maps=self.maps)

    def zero_filled(self, s: torch.Tensor) -> torch.Tensor:
        """The SENSE combination :math:`\\sum_c\\overline{C_c}F^{-1}S^2y_c/\\sum_c|C_c|^2`."""
        sf = self.fft_pattern(s)
        energy = self.maps.abs().square().sum(dim=0)
        return self._combine(sf * sf * self.y_fft) / torch.clamp(energy, min=1e-12)

    def closed_form_none(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - refused
        raise ValueError("the regulariser 'none' has no multi-coil closed form here")

    # ---- energy and derivatives ------------------------------------------------------------
    def energy(self, u: torch.Tensor, s: torch.Tensor, alpha: float) -> torch.Tensor:
        sf = self.fft_pattern(s)
        res = sf * (self._coil_fft(u) - self.y_fft)
        e = 0.5 * inner(res, res) + 0.5 * self.eps * inner(u, u)
        return e + alpha * self.reg(u) if alpha != 0 else e

    def gradient(self, u: torch.Tensor, s: torch.Tensor, alpha: float) -> torch.Tensor:
        sf = self.fft_pattern(s)
        g = self._combine(sf * sf * (self._coil_fft(u) - self.y_fft)) + self.eps * u
        return g + alpha * self.reg_gradient(u) if alpha != 0 else g

    def hvp(self, u: torch.Tensor, w: torch.Tensor, s: torch.Tensor, alpha: float,
            curvature: tuple | None = None) -> torch.Tensor:
        sf = self.fft_pattern(s)
        data = self._combine(sf * sf * self._coil_fft(w))
        # the single-coil Hessian with a zero pattern is exactly eps*w + the regulariser part
        return data + super().hvp(u, w, torch.zeros_like(s), alpha, curvature=curvature)

    def mixed(self, u: torch.Tensor, w: torch.Tensor, s: torch.Tensor,
              wrt: str = "s") -> tuple[torch.Tensor, torch.Tensor]:
        if wrt not in ("s", "w"):
            raise ValueError(f"wrt={wrt!r}: expected 's' (amplitudes) or 'w' (weights s**2)")
        fw, res = self._coil_fft(w), self._coil_fft(u) - self.y_fft
        ds = (fw.real * res.real + fw.imag * res.imag).sum(dim=1)
        if wrt == "s":
            ds = 2 * self.fft_pattern(s) * ds
        ds = torch.fft.fftshift(ds, dim=(-2, -1))
        return ds, inner(w, self.reg_gradient(u))
