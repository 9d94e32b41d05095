"""Fused PDHG for the MRI lower-level problem with a smooth gradient regulariser (Eq. 1.3).

The problem class is

.. math::
    \\min_u \\tfrac12\\|S(Fu) - y\\|^2 + \\alpha\\sum_i\\rho(|\\nabla u|_i)
    + \\tfrac\\varepsilon2\\|u\\|^2

with the thesis splitting :math:`K=(I,\\nabla)` of §1.2.3, the closed-form data prox of
Eq. (1.11) (:class:`~spinv.variational.solvers.fourier_block.FourierDataBlock`), a smooth
regulariser :math:`F_2(z)=\\alpha\\sum_i\\rho(|z|_i)` on forward differences
(:class:`~spinv.variational.regularisers.SmoothRegulariser` with ``operator="gradient"``, e.g.
:func:`~spinv.variational.regularisers.smoothed_tv`) and
:math:`G(u)=\\tfrac\\varepsilon2\\|u\\|^2`. It runs exactly the iteration of Algorithm 1 that
:func:`~spinv.variational.solvers.pdhg.pdhg` runs for these blocks,

.. math::
    v^{k+1} = \\operatorname{prox}_{\\sigma F^*}(v^k + \\sigma K\\bar u^k),\\quad
    u^{k+1} = \\frac{u^k - \\tau K^*v^{k+1}}{1+\\tau\\varepsilon},\\quad
    \\bar u^{k+1} = u^{k+1} + \\theta(u^{k+1}-u^k),

with :math:`\\operatorname{prox}_{\\sigma F_1^*}(q)=q-F^{-1}[(Fq+Sy)/(1+S^2/\\sigma)]` (Eq. 1.11
and Moreau) and :math:`\\operatorname{prox}_{\\sigma F_2^*}(q)=f(|q|)\\,q` (Appendix 1.C.1,
:meth:`~spinv.variational.rho.Rho.dual_factor`), but on preallocated real buffers with in-place
kernels (about 27 kernels, one FFT pair included, per iteration instead of ~100 allocating
ones; on CPU at these sizes the per-kernel overhead dominates):

* the complex images are stored as real *planar* arrays (real and imaginary planes), so every
  elementwise kernel runs on contiguous memory and broadcasts only over outer axes (a factor
  broadcast over an interleaved re/im axis was measured 5-8x slower); only the FFT sees the
  interleaved complex layout (one ``torch.complex`` in, one strided subtraction out);
* the state :math:`(u, v_1, v_2)` of an image is one row of a buffer, and so is
  :math:`K\\bar u=(\\bar u,\\nabla\\bar u)`: :math:`v+\\sigma K\\bar u` is one kernel for both
  blocks, and the stopping rule needs one subtraction and one norm kernel;
* :math:`|q_2|^2` (over directions and real/imaginary parts) is a square and three ``addcmul``;
  :math:`(Fq+Sy)/(1+S^2/\\sigma)` is one ``addcmul`` with the precomputed
  :math:`Sy/(1+S^2/\\sigma)`;
* :math:`K^*v=v_1+\\nabla^*v_2` is applied inside the primal update by four shifted in-place
  additions (the last row of :math:`v_2`'s vertical and the last column of its horizontal
  component stay zero, because :math:`\\nabla` is zero there), and
  :math:`\\bar u = u^{k+1}+\\theta(u^{k+1}-u^k)` is one ``lerp`` with weight :math:`1+\\theta`;
* the stopping rule of Algorithm 1,
  :math:`\\|u^{k+1}-u^k\\|/\\|u^k\\|+\\|v^{k+1}-v^k\\|/\\|v^k\\|\\le\\mathrm{tol}`,
  is evaluated every ``check_every`` iterations (and at the last one); the iterates do not
  depend on it, so checking every 10 iterations runs at most 9 iterations more than checking
  every one.

The iterates agree with the generic path to float rounding (``tests/variational/
test_fused_fourier_tv.py`` checks 1e-12 in float64). :func:`applicable` says whether a call of
:func:`~spinv.variational.solvers.pdhg.pdhg` can use it; :func:`fast_pdhg` takes the arguments
of ``pdhg`` and runs the fused path where it applies, the generic ``pdhg`` elsewhere. The choice
is the caller's (e.g. :func:`~spinv.variational.reconstruct.reconstruct_variational`): the
generic solver knows nothing of this module, so ``solvers/`` has no import cycle.

>>> import torch
>>> from spinv.operators import SubsampledFourier
>>> from spinv.variational.regularisers import smoothed_tv
>>> from spinv.variational.solvers.fourier_block import FourierDataBlock
>>> from spinv.variational.solvers.pdhg import PDHGOptions, RegulariserBlock, pdhg
>>> g = torch.Generator().manual_seed(0)
>>> A = SubsampledFourier((torch.rand(16, 16, generator=g) < 0.4).double())
>>> u = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64).to(torch.complex128)
>>> blocks = [FourierDataBlock(A.mask, A(u)), RegulariserBlock(smoothed_tv(1e-2, 1e-2))]
>>> options = PDHGOptions(iterations=50, tol=0.0)
>>> fast, h = fast_pdhg(blocks, A.adjoint(A(u)), options, epsilon=1e-2)
>>> slow, _ = pdhg(blocks, A.adjoint(A(u)), options, epsilon=1e-2)
>>> bool((fast - slow).abs().max() < 1e-12), h.extra["fused"]
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from spinv.linalg import squared_norm
from spinv.variational.differences import gradient
from spinv.variational.solvers.fourier_block import FourierDataBlock
from spinv.variational.solvers.history import History
from spinv.variational.solvers.pdhg import PDHGOptions, RegulariserBlock, pdhg, step_sizes

Tensor = torch.Tensor

__all__ = ["applicable", "fast_pdhg", "fused_fourier_pdhg", "FusedSteps"]


def _is_gradient_regulariser(block) -> bool:
    from spinv.variational.regularisers import SmoothRegulariser

    if not isinstance(block, RegulariserBlock):
        return False
    reg = block.reg
    return (
        isinstance(reg, SmoothRegulariser)
        and reg.group_dim == 2
        and reg._op is gradient
        and type(block).op is RegulariserBlock.op
        and type(block).dual_prox is RegulariserBlock.dual_prox
        and type(reg).dual_prox is SmoothRegulariser.dual_prox
    )


def applicable(
    blocks: Sequence,
    x0,
    g_prox: Callable | None = None,
    g_value: Callable | None = None,
    v0: Sequence[Tensor] | None = None,
) -> bool:
    """Whether :func:`fused_fourier_pdhg` solves this :func:`~.pdhg.pdhg` call exactly.

    Needs ``blocks = [FourierDataBlock, RegulariserBlock(SmoothRegulariser on the gradient)]``,
    the default :math:`G`, a complex ``x0`` ``(B, C, H, W)`` of the data's dtype and device
    whose shape the data broadcast to, no autograd, and a dual start ``v0`` (if any) that is
    zero where :math:`\\nabla` is (last row / column of the two components).
    """
    if g_prox is not None or g_value is not None or len(blocks) != 2:
        return False
    data, reg = blocks
    if type(data) is not FourierDataBlock or not _is_gradient_regulariser(reg):
        return False
    if not isinstance(x0, Tensor) or x0.dim() != 4 or not x0.is_complex():
        return False
    if x0.dtype != data.sy.dtype or x0.device != data.sy.device:
        return False
    try:
        if torch.broadcast_shapes(data.sy.shape, x0.shape) != x0.shape:
            return False
    except RuntimeError:
        return False
    if torch.is_grad_enabled() and (x0.requires_grad or data.sy.requires_grad):
        return False
    if v0 is not None:
        b, c, h, w = x0.shape
        if len(v0) != 2 or not all(isinstance(t, Tensor) for t in v0):
            return False
        v1, v2 = v0
        if tuple(v1.shape) != (b, c, h, w) or tuple(v2.shape) != (b, c, 2, h, w):
            return False
        if torch.is_grad_enabled() and (v1.requires_grad or v2.requires_grad):
            return False
        edge = torch.cat([v2[..., 0, -1, :].flatten(), v2[..., 1, :, -1].flatten()])
        if bool((edge != 0).any()):
            return False
    return True


def fast_pdhg(
    blocks: Sequence,
    x0,
    options: PDHGOptions | None = None,
    *,
    epsilon: float = 0.0,
    g_prox: Callable | None = None,
    g_value: Callable | None = None,
    v0: Sequence[Tensor] | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
    return_dual: bool = False,
):
    """:func:`~spinv.variational.solvers.pdhg.pdhg` with the same arguments and returns, on the
    fused buffers when :func:`applicable` (else the generic solver); ``history.extra["fused"]``
    says which path ran. The iterates agree to float rounding."""
    options = PDHGOptions() if options is None else options
    if not applicable(blocks, x0, g_prox, g_value, v0):
        out = pdhg(blocks, x0, options, epsilon=epsilon, g_prox=g_prox, g_value=g_value, v0=v0,
                   callback=callback, return_dual=return_dual)
        out[-1].extra["fused"] = False
        return out
    steps = step_sizes(blocks, epsilon, options.step_rule, options.op_norm)
    tau, sigma, theta = options.initial_steps(steps)
    fused = FusedSteps(tau=tau, sigma=sigma, theta=theta,
                       accelerated=steps["rule"] == "accelerated")
    x, v, hist = fused_fourier_pdhg(blocks, x0, options, epsilon=epsilon, steps=fused, v0=v0,
                                    callback=callback)
    hist.extra.update(steps)
    hist.extra["fused"] = True
    return (x, v, hist) if return_dual else (x, hist)


class _Views(NamedTuple):
    """Views of the state of iterations k (``old``) and k+1 (``new``) for one parity."""

    old: Tensor
    new: Tensor
    v_old: Tensor  # (v1, v2) of iteration k, as one row
    u_old: Tensor  # planar (B, C, 2, H, W)
    u_new: Tensor
    v1_new: Tensor
    v2_new: Tensor  # (B, 2, C, 2, HW)
    u_rows: Tensor  # (B, 2C, H, W) view of u_new
    u_down: Tensor  # u_rows without its first row
    u_right: Tensor  # u_rows without its first column
    p_y: Tensor  # vertical component of v2_new, (B, 2C, H, W)
    p_y_up: Tensor  # ... without its last row
    p_x: Tensor
    p_x_left: Tensor  # ... without its last column
    pair: Tensor  # (old, difference) as (2, B, 4, 2n): the stopping rule's norms


class _FusedBuffers:
    """The preallocated planar buffers of :func:`fused_fourier_pdhg` and their views.

    Planar real layout (real and imaginary parts as separate planes, so that every kernel runs
    on contiguous memory and broadcasts only over outer axes). The state (u, v1, v2) of one
    image is a row of 8n reals: u and v1 as (C, 2, H, W), v2 as (2, C, 2, H, W) (direction,
    channel, re/im). ``bank[0]`` and ``bank[1]`` hold the states of iterations k and k+1
    (swapped every iteration), ``bank[2]`` their difference (stopping rule only).
    """

    def __init__(self, data, x0: Tensor, v0: Sequence[Tensor] | None) -> None:
        b, c, h, w = self.shape = x0.shape
        n = self.n = c * h * w
        real, dev = x0.real.dtype, x0.device
        self.dtype, self.data = x0.dtype, data
        self.bank = torch.zeros(3, b, 8 * n, dtype=real, device=dev)
        self.q = torch.zeros(b, 6 * n, dtype=real, device=dev)  # v + sigma K ubar
        self.kxbar = torch.zeros(b, 6 * n, dtype=real, device=dev)  # K ubar = (ubar, grad ubar)
        self.r2 = torch.zeros(b, n, dtype=real, device=dev)
        self.r = self.r2.view(b, c, h, w)
        self.z = torch.empty(b, c, h, w, dtype=x0.dtype, device=dev)
        bank = self.bank
        self.planar(bank[0, :, : 2 * n]).copy_(torch.view_as_real(x0).permute(0, 1, 4, 2, 3))
        if v0 is not None:
            self.planar(bank[0, :, 2 * n : 4 * n]).copy_(
                torch.view_as_real(v0[0].to(x0.dtype)).permute(0, 1, 4, 2, 3)
            )
            v2 = torch.view_as_real(v0[1].to(x0.dtype)).permute(0, 2, 1, 5, 3, 4)
            bank[0, :, 4 * n :].view(b, 2, c, 2, h, w).copy_(v2)
        # K ubar for ubar = x0; the gradient's last row / column stay zero
        kx1 = self.rows(self.kxbar[:, : 2 * n])
        kx2 = self.kxbar[:, 2 * n :].view(b, 2, 2 * c, h, w)
        kx1.copy_(self.rows(bank[0, :, : 2 * n]))
        self.grad_args = (
            (kx1[:, :, 1:], kx1[:, :, :-1], kx2[:, 0, :, :-1]),
            (kx1[:, :, :, 1:], kx1[:, :, :, :-1], kx2[:, 1, :, :, :-1]),
        )
        self.apply_gradient()
        self.kx1p = self.planar(self.kxbar[:, : 2 * n])
        self.q1 = self.planar(self.q[:, : 2 * n])
        q2 = self.q2 = self.q[:, 2 * n :].view(b, 2, c, 2, h * w)
        self.q2_parts = ((q2[:, 0, :, 1],) * 2, (q2[:, 1, :, 0],) * 2, (q2[:, 1, :, 1],) * 2)
        self.r2v = self.r2.view(b, c, h * w)
        self.views = [self._views(i) for i in (0, 1)]

    def planar(self, buf: Tensor) -> Tensor:  # (B, 2n) -> (B, C, 2, H, W)
        b, c, h, w = self.shape
        return buf.view(b, c, 2, h, w)

    def rows(self, buf: Tensor) -> Tensor:  # (B, 2n) -> (B, 2C, H, W)
        b, c, h, w = self.shape
        return buf.view(b, 2 * c, h, w)

    def _views(self, i: int) -> _Views:
        b, c, h, w = self.shape
        n, bank = self.n, self.bank
        old, nw = bank[i], bank[1 - i]
        u_rows = self.rows(nw[:, : 2 * n])
        py, px = self.rows(nw[:, 4 * n : 6 * n]), self.rows(nw[:, 6 * n :])
        return _Views(
            old, nw, old[:, 2 * n :], self.planar(old[:, : 2 * n]), self.planar(nw[:, : 2 * n]),
            self.planar(nw[:, 2 * n : 4 * n]), nw[:, 4 * n :].view(b, 2, c, 2, h * w), u_rows,
            u_rows[:, :, 1:], u_rows[:, :, :, 1:], py, py[:, :, :-1], px, px[:, :, :, :-1],
            bank[i :: 2 - i][:2].view(2, b, 4, 2 * n),
        )

    def apply_gradient(self) -> None:
        """The gradient rows of ``kxbar`` from its first block (last row / column stay 0)."""
        for a1, a0, o in self.grad_args:
            torch.sub(a1, a0, out=o)

    def data_factors(self, sigma: float) -> tuple[Tensor, Tensor]:
        """:math:`1/(1+S^2/\\sigma)` and :math:`Sy/(1+S^2/\\sigma)`, interleaved real."""
        h, w = self.shape[-2:]
        scale = 1.0 / (1.0 + self.data.s2 / sigma)
        sys_r = torch.view_as_real((self.data.sy * scale).to(self.dtype))
        return scale.unsqueeze(-1).expand(h, w, 2).contiguous(), sys_r

    def dual_step(self, vw: _Views, sigma: float, factors: tuple, rho, alpha: float) -> None:
        """Both dual blocks:
        :math:`v^{k+1}=\\operatorname{prox}_{\\sigma F^*}(v^k+\\sigma K\\bar u^k)`."""
        b, c, h, w = self.shape
        torch.add(vw.v_old, self.kxbar, alpha=sigma, out=self.q)
        # data block, Eq. (1.11) + Moreau: v1 = q1 - F^-1[(F q1 + S y) / (1 + S^2/sigma)]
        torch.complex(self.q1[:, :, 0], self.q1[:, :, 1], out=self.z)
        khat = torch.fft.fft2(self.z, norm="ortho")  # (fft2's out= copies: fresh tensors)
        khat_r = torch.view_as_real(khat)
        torch.addcmul(factors[1], khat_r, factors[0], out=khat_r)
        kinv = torch.view_as_real(torch.fft.ifft2(khat, norm="ortho"))
        torch.sub(self.q1, kinv.permute(0, 1, 4, 2, 3), out=vw.v1_new)
        # regulariser block (Appendix 1.C.1): v2 = f(|q2|) q2, modulus over directions, re/im
        first = self.q2[:, 0, :, 0]
        torch.mul(first, first, out=self.r2v)
        for t1, t2 in self.q2_parts:
            self.r2v.addcmul_(t1, t2)
        self.r2.sqrt_()
        f = rho.dual_factor(self.r, sigma, alpha)
        torch.mul(self.q2, f.view(b, 1, c, 1, h * w), out=vw.v2_new)

    @staticmethod
    def primal_step(vw: _Views, tau: float, epsilon: float) -> None:
        """:math:`u^{k+1}=(u^k-\\tau(v_1+\\nabla^*v_2))/(1+\\tau\\varepsilon)` with
        :math:`\\nabla^*p=-p_y+p_y(\\text{shifted down})-p_x+p_x(\\text{shifted right})`."""
        torch.add(vw.u_old, vw.v1_new, alpha=-tau, out=vw.u_new)
        vw.u_rows.add_(vw.p_y, alpha=tau)
        vw.u_down.add_(vw.p_y_up, alpha=-tau)
        vw.u_rows.add_(vw.p_x, alpha=tau)
        vw.u_right.add_(vw.p_x_left, alpha=-tau)
        if epsilon > 0:
            vw.u_rows.div_(1.0 + tau * epsilon)

    def extrapolate(self, vw: _Views, theta: float) -> None:
        """:math:`\\bar u = u^{k+1}+\\theta(u^{k+1}-u^k)` (one lerp) and :math:`K\\bar u`."""
        torch.lerp(vw.u_old, vw.u_new, 1.0 + theta, out=self.kx1p)
        self.apply_gradient()

    def residuals(self, vw: _Views, tiny: float) -> list[float]:
        """Algorithm 1 stopping quantity per image, from the norms of (u, v1, v2y, v2x) and
        of their changes."""
        torch.sub(vw.new, vw.old, out=self.bank[2])
        norms = torch.linalg.vector_norm(vw.pair, dim=3).tolist()
        return [_residual(a, d, tiny) for a, d in zip(*norms, strict=True)]

    def state(self, parity: int) -> tuple[Tensor, list[Tensor]]:
        """``(x, [v1, v2])`` as complex tensors from ``bank[parity]``."""
        b, c, h, w = self.shape
        n, st = self.n, self.bank[parity]
        v2 = st[:, 4 * n :].view(b, 2, c, 2, h, w).transpose(1, 2).reshape(b, 2 * c, 2, h, w)
        return (
            _to_complex(self.planar(st[:, : 2 * n])),
            [_to_complex(self.planar(st[:, 2 * n : 4 * n])), _to_complex(v2).view(b, c, 2, h, w)],
        )


@dataclass(frozen=True)
class FusedSteps:
    """Step sizes of :func:`fused_fourier_pdhg` (from :func:`~.pdhg.step_sizes`);
    ``accelerated`` applies the CP 2011 Alg. 2 update of :math:`(\\tau,\\sigma,\\theta)` after
    every iteration."""

    tau: float
    sigma: float
    theta: float
    accelerated: bool = False


@torch.no_grad()
def fused_fourier_pdhg(
    blocks: Sequence,
    x0: Tensor,
    options: PDHGOptions,
    *,
    epsilon: float,
    steps: FusedSteps,
    v0: Sequence[Tensor] | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, list[Tensor], History]:
    """Algorithm 1 for Eq. (1.3) on fused buffers (see the module docstring).

    ``options``: iterations, ``tol``, ``track_objective`` and ``check_every`` of
    :class:`~.pdhg.PDHGOptions` (its step knobs are resolved into ``steps`` by the caller).
    Returns ``(x, [v1, v2], history)``; ``history.residual`` (and ``objective``) hold ``nan``
    for the iterations where the stopping rule was not evaluated. Check :func:`applicable`
    first.
    """
    iterations, check_every = options.iterations, options.check_every
    data, regb = blocks
    rho, alpha = regb.reg.rho, regb.reg.alpha
    hist = History()
    tiny = torch.finfo(x0.real.dtype).tiny
    buf = _FusedBuffers(data, x0, v0)
    tau_k, sigma_k, theta_k = float(steps.tau), float(steps.sigma), float(steps.theta)
    factors = buf.data_factors(sigma_k)
    it = 0
    for k in range(iterations):
        check = (k + 1) % check_every == 0 or k + 1 == iterations
        vw = buf.views[it]
        buf.dual_step(vw, sigma_k, factors, rho, alpha)
        buf.primal_step(vw, tau_k, epsilon)
        if steps.accelerated:
            theta_k = 1.0 / math.sqrt(1.0 + 2.0 * epsilon * tau_k)
            tau_k, sigma_k = theta_k * tau_k, sigma_k / theta_k
            factors = buf.data_factors(sigma_k)
        buf.extrapolate(vw, theta_k)
        residual = buf.residuals(vw, tiny) if check else None
        it = 1 - it
        objective = None
        if options.track_objective and check:
            xc = _to_complex(vw.u_new)
            objective = (data.value(xc) + regb.value(gradient(xc))
                         + 0.5 * epsilon * squared_norm(vw.u_rows))
        hist.record(objective, float("nan") if residual is None else max(residual))
        if callback is not None:
            callback(k, _to_complex(vw.u_new))
        if residual is not None and max(residual) <= options.tol:
            hist.converged = True
            break
    x, v = buf.state(it)
    return x, v, hist


def _residual(norms: list, changes: list, tiny: float) -> float:
    """Algorithm 1 residual of one image from the norms of (u, v1, v2y, v2x) and of their
    changes: :math:`\\|\\Delta u\\|/\\|u\\| + \\|\\Delta v\\|/\\|v\\|`."""
    nv = math.sqrt(sum(t * t for t in norms[1:]))
    dv = math.sqrt(sum(t * t for t in changes[1:]))
    return changes[0] / max(norms[0], tiny) + dv / max(nv, tiny)


def _to_complex(p: Tensor) -> Tensor:
    """Planar ``(B, C, 2, H, W)`` real -> complex ``(B, C, H, W)`` (a new tensor)."""
    return torch.complex(p[:, :, 0], p[:, :, 1])
