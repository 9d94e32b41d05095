"""The lower-level energy of the bilevel MRI sampling problem (thesis Eq. 1.3, Appendices 1.B, 1.D).

For a batch of fully sampled k-space data :math:`y_b` (orthonormal FFT :math:`F`), a sampling
pattern :math:`S=\\mathrm{diag}(s)` with :math:`s\\in[0,1]^n` shared by the batch, and
:math:`\\alpha\\ge 0`,

.. math::  E_y(u;S,\\alpha)=\\tfrac12\\|S(Fu-y)\\|^2+\\alpha\\sum_i\\rho(|Au|_i)
           +\\tfrac{\\varepsilon}2\\|u\\|^2                                  \\qquad (1.3)

with :math:`|Au|_i=(\\sum_m|A_mu|_i^2)^{1/2}`. This module gives the energy, its gradient
(App. 1.D), the Hessian action (Eq. 1.10 and App. 1.D) and the mixed derivative
:math:`D_{p,u}E` applied to a vector (App. 1.D, last two formulas). Complex images are
differentiated in their real and imaginary parts (App. 1.B), i.e. with the real inner
product :math:`\\mathrm{Re}\\langle a,b\\rangle`.

Conventions: images ``u`` are complex ``(B, 1, H, W)``; k-space data and the pattern are
*centred* (DC at index ``(H//2, W//2)``, as :func:`torch.fft.fftshift` puts it); internally
the pattern is moved to FFT order once per call. Everything is vectorised over the batch.

>>> import torch
>>> from spinv.bilevel.lower_level import LowerLevel, make_regulariser
>>> g = torch.Generator().manual_seed(0)
>>> u_true = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
>>> ll = LowerLevel.from_images(u_true, make_regulariser("tv", gamma=0.05), noise=0.0)
>>> s = torch.full((8, 8), 0.5, dtype=torch.float64)
>>> u = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64).to(torch.complex128)
>>> w = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64).to(torch.complex128)
>>> h = 1e-6
>>> fd = (ll.gradient(u + h * w, s, 0.1) - ll.gradient(u - h * w, s, 0.1)) / (2 * h)
>>> bool(torch.allclose(fd, ll.hvp(u, w, s, 0.1), atol=1e-6))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from spinv.linalg import inner
from spinv.variational.differences import GRADIENT_NORM_BOUND, gradient, gradient_adjoint
from spinv.variational.regularisers import RegulariserBase, modulus
from spinv.variational.rho import HuberRho, QuadraticRho

__all__ = [
    "HuberRho",
    "QuadraticRho",
    "Regulariser",
    "LowerLevel",
    "make_regulariser",
    "fft2c",
    "ifft2c",
    "REGULARISERS",
]

REGULARISERS = ("tv", "wavelet", "h1", "none", "dtv")


def fft2c(u: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2D FFT with centred output, :math:`\\mathrm{fftshift}(Fu)`."""
    return torch.fft.fftshift(torch.fft.fft2(u, norm="ortho"), dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c`."""
    return torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho")


# --------------------------------------------------------------------------------------------
# The operator A of J(u) = Q(Au): gradient, orthogonal wavelet, directional gradient
# --------------------------------------------------------------------------------------------
class _GradientOp:
    """:math:`A=\\nabla` (forward differences, Neumann), ``M=2``, :math:`\\|A\\|\\le\\sqrt8`."""

    M = 2
    norm_bound = GRADIENT_NORM_BOUND

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return gradient(u)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return gradient_adjoint(z)

    def symbol(self, shape, dtype, device) -> torch.Tensor:
        """Centred Fourier symbol of the periodic :math:`\\nabla^*\\nabla` (for preconditioning)."""
        h, w = shape
        ky = torch.fft.fftshift(torch.fft.fftfreq(h, dtype=dtype, device=device))
        kx = torch.fft.fftshift(torch.fft.fftfreq(w, dtype=dtype, device=device))
        return 4 * torch.sin(math.pi * ky)[:, None] ** 2 + 4 * torch.sin(math.pi * kx)[None, :] ** 2


class _DirectionalGradientOp(_GradientOp):
    """Directional TV operator :math:`A=(I-\\xi\\xi^T)\\nabla` (Ehrhardt and Betcke 2016).

    ``xi`` is a real ``(B, 1, 2, H, W)`` field with :math:`|\\xi|\\le 1`, typically
    :math:`\\nabla v/\\sqrt{|\\nabla v|^2+\\eta^2}` from a reference image ``v``; since the
    projection has norm 1, :math:`\\|A\\|\\le\\sqrt8`.
    """

    def __init__(self, xi: torch.Tensor):
        self.xi = xi

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        xi = self.xi.to(device=z.device)
        return z - xi * (xi * z).sum(dim=2, keepdim=True)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self._project(gradient(u))

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return gradient_adjoint(self._project(z))


class _WaveletOp:
    """:math:`A=W`, an orthogonal periodised wavelet transform (``M=1``, :math:`\\|A\\|=1`).

    Applied to real and imaginary parts separately; coefficients are laid out as an image
    ``(B, 1, 1, H, W)`` so that :math:`W^*W=I`.
    """

    M = 1
    norm_bound = 1.0

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        from spinv.variational.wavelets import WaveletTransform

        self.transform = WaveletTransform(levels=levels, wavelet=wavelet)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.transform(u).unsqueeze(2)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return self.transform.adjoint(z.squeeze(2))

    def symbol(self, shape, dtype, device) -> torch.Tensor:
        return torch.ones(shape, dtype=dtype, device=device)


@dataclass
class Regulariser(RegulariserBase):
    """:math:`J(u)=Q(Au)=\\sum_i\\rho(|Au|_i)` with its operator and :math:`\\rho` (Sec. 1.2.1).

    The bilevel family of :class:`spinv.variational.regularisers.RegulariserBase`: ``reg(u)`` is
    the *unweighted* :math:`J(u)` (the lower level multiplies it by :math:`\\alpha`). ``kind`` is
    one of ``"tv"``, ``"wavelet"``, ``"h1"``, ``"dtv"`` or ``"none"`` (then :math:`J=0`,
    :math:`\\alpha=0` and the lower level has the closed form
    :math:`\\hat u=F^{-1}(S^2y/(S^2+\\varepsilon))`).
    """

    kind: str
    op: object | None
    rho: object | None

    @property
    def is_none(self) -> bool:
        return self.kind == "none"

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`J(u)` per image, shape ``(B,)``."""
        if self.is_none:
            return u.real.new_zeros(u.shape[0])
        return self.rho.value(modulus(self.op(u), 2)).reshape(u.shape[0], -1).sum(1)

    def smoothness(self, bound: str = "thesis") -> float:
        """Smoothness constant of :math:`J` for :math:`z=Au`: Eq. (1.15),
        :math:`\\tfrac32\\sqrt{2M}\\sup|\\phi'(x)x|+\\sup|\\phi|` (``bound="thesis"``), or
        the tight :math:`\\max(\\sup\\rho'',\\sup\\phi)` (eigenvalues of the pointwise
        Hessian, ``bound="tight"``)."""
        if self.is_none:
            return 0.0
        return self.rho.smoothness(components=2 * self.op.M, bound=bound)


def make_regulariser(
    kind: str = "tv",
    gamma: float = 0.01,
    wavelet: str = "db4",
    levels: int = 3,
    reference: torch.Tensor | None = None,
    eta: float = 0.05,
) -> Regulariser:
    """Build a :class:`Regulariser` by name (TV, wavelet, H1, dTV, none; Sec. 1.3.4).

    ``reference`` (``(B, 1, H, W)`` real) and ``eta`` define the dTV vector field
    :math:`\\xi=\\nabla v/\\sqrt{|\\nabla v|^2+\\eta^2}`.
    """
    if kind == "tv":
        return Regulariser("tv", _GradientOp(), HuberRho(gamma))
    if kind == "h1":
        return Regulariser("h1", _GradientOp(), QuadraticRho())
    if kind == "wavelet":
        return Regulariser("wavelet", _WaveletOp(wavelet, levels), HuberRho(gamma))
    if kind == "none":
        return Regulariser("none", None, None)
    if kind == "dtv":
        if reference is None:
            raise ValueError("kind='dtv' needs reference=(B, 1, H, W) real images, got None")
        g = gradient(reference.real if reference.is_complex() else reference)
        xi = g / torch.sqrt((g * g).sum(dim=2, keepdim=True) + eta * eta)
        return Regulariser("dtv", _DirectionalGradientOp(xi), HuberRho(gamma))
    raise ValueError(f"kind={kind!r}: expected one of {REGULARISERS}")


# --------------------------------------------------------------------------------------------
@dataclass
class LowerLevel:
    """Training data and energy of Eq. (1.3) for a batch of images.

    Parameters: ``y`` complex centred k-space ``(B, 1, H, W)``; ``u_true`` the ground truth
    (used by the upper level); ``reg`` the :class:`Regulariser`; ``eps`` the strong-convexity
    weight :math:`\\varepsilon`. Everything in ``dtype`` (complex128 by default).
    """

    y: torch.Tensor
    reg: Regulariser
    eps: float = 1e-6
    u_true: torch.Tensor | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not torch.is_tensor(self.y) or not self.y.is_complex() or self.y.ndim != 4:
            raise TypeError("y: expected a complex tensor of shape (B, 1, H, W)")
        if self.y.shape[1] != 1:
            raise ValueError(f"y.shape={tuple(self.y.shape)}: expected C=1")
        if not self.eps > 0:
            raise ValueError(f"eps={self.eps!r}: expected a positive float")
        self.y_fft = torch.fft.ifftshift(self.y, dim=(-2, -1))

    @classmethod
    def from_images(
        cls,
        u_true: torch.Tensor,
        reg: Regulariser,
        noise: float = 0.0,
        eps: float = 1e-6,
        seed: int = 0,
        dtype: torch.dtype = torch.complex128,
    ) -> LowerLevel:
        """Simulate fully sampled data :math:`y=Fu^*+\\eta` with complex Gaussian noise of
        standard deviation ``noise`` per real component (Sec. 1.3.1)."""
        if u_true.ndim != 4:
            raise ValueError(f"u_true.shape={tuple(u_true.shape)}: expected (B, 1, H, W)")
        u = u_true.to(dtype)
        k = fft2c(u)
        if noise > 0:
            gen = torch.Generator().manual_seed(seed)
            rdt = torch.float64 if dtype == torch.complex128 else torch.float32
            n = torch.complex(
                torch.randn(k.shape, generator=gen, dtype=rdt),
                torch.randn(k.shape, generator=gen, dtype=rdt),
            ).to(k.device)
            k = k + noise * n
        return cls(y=k, reg=reg, eps=eps, u_true=u)

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.y.shape[-2:])

    def subset(self, index) -> LowerLevel:
        """The same problem restricted to images ``index`` (a slice or index tensor)."""
        ut = None if self.u_true is None else self.u_true[index]
        reg = self.reg
        if reg.kind == "dtv":
            reg = Regulariser("dtv", _DirectionalGradientOp(reg.op.xi[index]), reg.rho)
        return LowerLevel(y=self.y[index], reg=reg, eps=self.eps, u_true=ut)

    def fft_pattern(self, s: torch.Tensor) -> torch.Tensor:
        """Centred pattern ``(H, W)`` -> FFT-ordered real weights on the data's device/dtype."""
        if s.shape != self.y.shape[-2:]:
            raise ValueError(f"s.shape={tuple(s.shape)}: expected {tuple(self.y.shape[-2:])}")
        return torch.fft.ifftshift(s.to(self.y.real.dtype).to(self.y.device), dim=(-2, -1))

    def zero_filled(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`F^{-1}S^2y` (a natural initialisation)."""
        sf = self.fft_pattern(s)
        return torch.fft.ifft2(sf * sf * self.y_fft, norm="ortho")

    def closed_form_none(self, s: torch.Tensor) -> torch.Tensor:
        """Minimiser for :math:`\\alpha=0`: :math:`F^{-1}(S^2y/(S^2+\\varepsilon))`."""
        s2 = self.fft_pattern(s).square()
        return torch.fft.ifft2(s2 * self.y_fft / (s2 + self.eps), norm="ortho")

    # ---- energy and derivatives ----------------------------------------------------------
    def energy(self, u: torch.Tensor, s: torch.Tensor, alpha: float) -> torch.Tensor:
        """:math:`E_y(u;S,\\alpha)` per image, shape ``(B,)`` (Eq. 1.3)."""
        sf = self.fft_pattern(s)
        res = sf * (torch.fft.fft2(u, norm="ortho") - self.y_fft)
        e = 0.5 * inner(res, res) + 0.5 * self.eps * inner(u, u)
        if not self.reg.is_none and alpha != 0:
            e = e + alpha * self.reg(u)
        return e

    def reg_gradient(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`D_uJ(u)=A^*(\\phi(|Au|)Au)` (Eq. 1.8)."""
        z = self.reg.op(u)
        return self.reg.op.adjoint(self.reg.rho.phi(modulus(z, 2)) * z)

    def gradient(self, u: torch.Tensor, s: torch.Tensor, alpha: float) -> torch.Tensor:
        """:math:`D_uE=F^{-1}S^2(Fu-y)+\\alpha A^*(\\phi(|Au|)Au)+\\varepsilon u` (App. 1.D)."""
        sf = self.fft_pattern(s)
        g = torch.fft.ifft2(sf * sf * (torch.fft.fft2(u, norm="ortho") - self.y_fft), norm="ortho")
        g = g + self.eps * u
        if not self.reg.is_none and alpha != 0:
            g = g + alpha * self.reg_gradient(u)
        return g

    def curvature(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pointwise data of the regulariser Hessian at ``u``: ``(z, phi(|z|), psi(|z|))``."""
        z = self.reg.op(u)
        r = modulus(z, 2)
        return z, self.reg.rho.phi(r), self.reg.rho.psi(r)

    def hvp(
        self,
        u: torch.Tensor,
        w: torch.Tensor,
        s: torch.Tensor,
        alpha: float,
        curvature: tuple | None = None,
    ) -> torch.Tensor:
        """Hessian action :math:`D_u^2E(u)w` (Eq. 1.10 and App. 1.D)

        :math:`F^{-1}S^2Fw+\\alpha A^*\\big(\\psi(|z|)z\\,\\mathrm{Re}\\langle z,Aw\\rangle_{pt}
        +\\phi(|z|)Aw\\big)+\\varepsilon w`, :math:`z=Au`. Pass ``curvature=self.curvature(u)``
        to reuse it across many products (as CG does).
        """
        sf = self.fft_pattern(s)
        out = torch.fft.ifft2(sf * sf * torch.fft.fft2(w, norm="ortho"), norm="ortho")
        out = out + self.eps * w
        if not self.reg.is_none and alpha != 0:
            z, ph, ps = curvature if curvature is not None else self.curvature(u)
            aw = self.reg.op(w)
            zw = (z.real * aw.real + z.imag * aw.imag).sum(dim=2, keepdim=True)
            out = out + alpha * self.reg.op.adjoint(ps * zw * z + ph * aw)
        return out

    def mixed(
        self, u: torch.Tensor, w: torch.Tensor, s: torch.Tensor, wrt: str = "s"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`D_{p,u}E(u;p)\\,w` split into pattern and :math:`\\alpha` parts (App. 1.D).

        Returns ``(d_s, d_alpha)``: ``d_s`` centred ``(B, H, W)`` with
        :math:`2s_i\\,\\mathrm{Re}(\\overline{(Fw)_i}(Fu-y)_i)`, and ``d_alpha`` ``(B,)`` with
        :math:`\\mathrm{Re}\\langle w, A^*(\\phi(|Au|)Au)\\rangle`. With ``wrt="w"`` the
        pattern part is taken with respect to the data weights :math:`w_i=s_i^2` instead:
        :math:`\\mathrm{Re}(\\overline{(Fw)_i}(Fu-y)_i)`, which does not vanish at
        :math:`s_i=0` (see :class:`spinv.bilevel.parametrisations.CartesianLines`).
        """
        if wrt not in ("s", "w"):
            raise ValueError(f"wrt={wrt!r}: expected 's' (amplitudes) or 'w' (weights s**2)")
        fw = torch.fft.fft2(w, norm="ortho")
        res = torch.fft.fft2(u, norm="ortho") - self.y_fft
        ds = fw.real * res.real + fw.imag * res.imag
        if wrt == "s":
            ds = 2 * self.fft_pattern(s) * ds
        ds = torch.fft.fftshift(ds[:, 0], dim=(-2, -1))
        if self.reg.is_none:
            da = torch.zeros(u.shape[0], dtype=ds.dtype, device=ds.device)
        else:
            da = inner(w, self.reg_gradient(u))
        return ds, da

    def preconditioner(
        self, u: torch.Tensor, s: torch.Tensor, alpha: float, curvature: tuple | None = None
    ):
        """A k-space diagonal approximation :math:`M\\approx D_u^2E` for preconditioned CG.

        :math:`M=F^{-1}\\mathrm{diag}(s^2+\\varepsilon+\\alpha\\bar\\phi\\,\\lambda)F`, with
        :math:`\\lambda` the Fourier symbol of the periodic :math:`A^*A` and :math:`\\bar\\phi`
        the per-image mean of :math:`\\phi(|Au|)`. SPD, so PCG stays exact; it only changes
        the iteration count. Returns a function ``r -> M^{-1} r``.
        """
        sf = self.fft_pattern(s)
        diag = (sf * sf + self.eps).expand(u.shape[0], 1, *self.shape)
        if not self.reg.is_none and alpha != 0:
            _, ph, _ = curvature if curvature is not None else self.curvature(u)
            mean_phi = ph.reshape(u.shape[0], -1).mean(1).reshape(-1, 1, 1, 1)
            lam = torch.fft.ifftshift(
                self.reg.op.symbol(self.shape, sf.dtype, sf.device), dim=(-2, -1)
            )
            diag = diag + alpha * mean_phi * lam
        inv = 1.0 / diag

        def apply(r: torch.Tensor) -> torch.Tensor:
            return torch.fft.ifft2(inv * torch.fft.fft2(r, norm="ortho"), norm="ortho")

        return apply
