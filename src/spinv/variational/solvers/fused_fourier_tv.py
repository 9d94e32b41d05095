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
>>> from spinv.variational.solvers.pdhg import RegulariserBlock, pdhg
>>> g = torch.Generator().manual_seed(0)
>>> A = SubsampledFourier((torch.rand(16, 16, generator=g) < 0.4).double())
>>> u = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64).to(torch.complex128)
>>> blocks = [FourierDataBlock(A.mask, A(u)), RegulariserBlock(smoothed_tv(1e-2, 1e-2))]
>>> fast, h = fast_pdhg(blocks, A.adjoint(A(u)), epsilon=1e-2, iterations=50, tol=0.0)
>>> slow, _ = pdhg(blocks, A.adjoint(A(u)), epsilon=1e-2, iterations=50, tol=0.0)
>>> bool((fast - slow).abs().max() < 1e-12), h.extra["fused"]
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from spinv.linalg import squared_norm
from spinv.variational.differences import gradient
from spinv.variational.solvers.fourier_block import FourierDataBlock
from spinv.variational.solvers.history import History, check_iterations
from spinv.variational.solvers.pdhg import RegulariserBlock, pdhg, step_sizes

Tensor = torch.Tensor

__all__ = ["applicable", "fast_pdhg", "fused_fourier_pdhg"]


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


def fast_pdhg(blocks: Sequence, x0, **options):
    """:func:`~spinv.variational.solvers.pdhg.pdhg` with the same arguments and returns, on the
    fused buffers when :func:`applicable` (else the generic solver); ``history.extra["fused"]``
    says which path ran. The iterates agree to float rounding."""
    get = options.get
    if not applicable(blocks, x0, get("g_prox"), get("g_value"), get("v0")):
        out = pdhg(blocks, x0, **options)
        out[-1].extra["fused"] = False
        return out
    unknown = set(options) - {"epsilon", "step_rule", "tau", "sigma", "theta", "op_norm",
                              "iterations", "tol", "v0", "track_objective", "callback",
                              "return_dual", "check_every", "g_prox", "g_value"}
    if unknown:
        raise TypeError(f"fast_pdhg: unexpected keyword arguments {sorted(unknown)}")
    iterations, check_every = get("iterations", 1000), get("check_every", 1)
    check_iterations(iterations)
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every={check_every!r}: expected an integer >= 1")
    epsilon = get("epsilon", 0.0)
    hist = History()
    steps = step_sizes(blocks, epsilon, get("step_rule", "auto"), get("op_norm"))
    hist.extra.update(steps)
    hist.extra["fused"] = True
    x, v, hist = fused_fourier_pdhg(
        blocks, x0, epsilon=epsilon,
        tau=float(get("tau") if get("tau") is not None else steps["tau"]),
        sigma=float(get("sigma") if get("sigma") is not None else steps["sigma"]),
        theta=float(get("theta") if get("theta") is not None else steps["theta"]),
        accelerated=steps["rule"] == "accelerated", iterations=iterations,
        tol=get("tol", 1e-6), v0=get("v0"), track_objective=get("track_objective", True),
        check_every=check_every, callback=get("callback"), history=hist)
    return (x, v, hist) if get("return_dual", False) else (x, hist)


@torch.no_grad()
def fused_fourier_pdhg(
    blocks: Sequence,
    x0: Tensor,
    *,
    epsilon: float,
    tau: float,
    sigma: float,
    theta: float,
    accelerated: bool = False,
    iterations: int = 1000,
    tol: float = 1e-6,
    v0: Sequence[Tensor] | None = None,
    track_objective: bool = True,
    check_every: int = 1,
    callback: Callable[[int, Tensor], None] | None = None,
    history: History | None = None,
) -> tuple[Tensor, list[Tensor], History]:
    """Algorithm 1 for Eq. (1.3) on fused buffers (see the module docstring).

    Step sizes come from the caller (:func:`~.pdhg.step_sizes`); ``accelerated`` applies the
    CP 2011 Alg. 2 update of :math:`(\\tau,\\sigma,\\theta)` after every iteration. Returns
    ``(x, [v1, v2], history)``; ``history.residual`` (and ``objective``) hold ``nan`` for the
    iterations where the stopping rule was not evaluated. Check :func:`applicable` first.
    """
    data, regb = blocks
    reg = regb.reg
    rho, alpha = reg.rho, reg.alpha
    hist = History() if history is None else history
    b, c, h, w = x0.shape
    n = c * h * w
    real = x0.real.dtype
    tiny = torch.finfo(real).tiny
    dev = x0.device

    def new(*size):
        return torch.zeros(*size, dtype=real, device=dev)

    # Planar real layout (real and imaginary parts as separate planes, so that every kernel
    # runs on contiguous memory and broadcasts only over outer axes). The state (u, v1, v2) of
    # one image is a row of 8n reals: u and v1 as (C, 2, H, W), v2 as (2, C, 2, H, W)
    # (direction, channel, re/im). bank[0] and bank[1] hold the states of iterations k and
    # k+1 (swapped every iteration), bank[2] their difference (stopping rule only).
    bank = new(3, b, 8 * n)
    q, kxbar = new(b, 6 * n), new(b, 6 * n)  # v + sigma K ubar; K ubar = (ubar, grad ubar)
    r2 = new(b, n)
    r = r2.view(b, c, h, w)
    z = torch.empty(b, c, h, w, dtype=x0.dtype, device=dev)

    def planar(buf):  # (B, 2n) -> (B, C, 2, H, W)
        return buf.view(b, c, 2, h, w)

    def rows(buf):  # (B, 2n) -> (B, 2C, H, W)
        return buf.view(b, 2 * c, h, w)

    planar(bank[0, :, : 2 * n]).copy_(torch.view_as_real(x0).permute(0, 1, 4, 2, 3))
    if v0 is not None:
        planar(bank[0, :, 2 * n : 4 * n]).copy_(
            torch.view_as_real(v0[0].to(x0.dtype)).permute(0, 1, 4, 2, 3)
        )
        v2 = torch.view_as_real(v0[1].to(x0.dtype)).permute(0, 2, 1, 5, 3, 4)
        bank[0, :, 4 * n :].view(b, 2, c, 2, h, w).copy_(v2)
    # K ubar for ubar = x0; the gradient's last row / column stay zero
    kx1 = rows(kxbar[:, : 2 * n])
    kx2 = kxbar[:, 2 * n :].view(b, 2, 2 * c, h, w)
    kx1.copy_(rows(bank[0, :, : 2 * n]))
    grad_args = (
        (kx1[:, :, 1:], kx1[:, :, :-1], kx2[:, 0, :, :-1]),
        (kx1[:, :, :, 1:], kx1[:, :, :, :-1], kx2[:, 1, :, :, :-1]),
    )
    for a1, a0, o in grad_args:
        torch.sub(a1, a0, out=o)
    kx1p = planar(kxbar[:, : 2 * n])
    q1 = planar(q[:, : 2 * n])
    q1re, q1im = q1[:, :, 0], q1[:, :, 1]
    q2 = q[:, 2 * n :].view(b, 2, c, 2, h * w)
    q2_parts = ((q2[:, 0, :, 1],) * 2, (q2[:, 1, :, 0],) * 2, (q2[:, 1, :, 1],) * 2)
    q2_first = q2[:, 0, :, 0]
    r2v = r2.view(b, c, h * w)
    fview = (b, 1, c, 1, h * w)
    par = []  # views of the states of iterations k (old) and k+1 (new), per parity
    for i in (0, 1):
        old, nw = bank[i], bank[1 - i]
        xnr = rows(nw[:, : 2 * n])
        py, px = rows(nw[:, 4 * n : 6 * n]), rows(nw[:, 6 * n :])
        par.append(
            (
                old,
                nw,
                old[:, 2 * n :],
                planar(old[:, : 2 * n]),
                planar(nw[:, : 2 * n]),
                planar(nw[:, 2 * n : 4 * n]),
                nw[:, 4 * n :].view(b, 2, c, 2, h * w),
                xnr,
                xnr[:, :, 1:],
                xnr[:, :, :, 1:],
                py,
                py[:, :, :-1],
                px,
                px[:, :, :, :-1],
                bank[i :: 2 - i][:2].view(2, b, 4, 2 * n),  # (old, difference)
            )
        )
    s2, sy = data.s2, data.sy

    def data_factors(sig):  # 1/(1 + S^2/sigma) and S y/(1 + S^2/sigma), interleaved real
        scale = 1.0 / (1.0 + s2 / sig)
        sys_r = torch.view_as_real((sy * scale).to(x0.dtype))
        return scale.unsqueeze(-1).expand(h, w, 2).contiguous(), sys_r

    tau_k, sigma_k, theta_k = float(tau), float(sigma), float(theta)
    scale2, sys_r = data_factors(sigma_k)
    it = 0
    for k in range(iterations):
        check = (k + 1) % check_every == 0 or k + 1 == iterations
        (old, nw, vo, xop, xnp, n1, n2, xnr, xn_r1, xn_c1, py, py_up, px, px_left, pair) = par[it]
        # dual step: q = v + sigma K ubar for both blocks at once
        torch.add(vo, kxbar, alpha=sigma_k, out=q)
        # data block, Eq. (1.11) + Moreau: v1 = q1 - F^-1[(F q1 + S y) / (1 + S^2/sigma)]
        torch.complex(q1re, q1im, out=z)
        khat = torch.fft.fft2(z, norm="ortho")  # (fft2's out= copies: fresh tensors)
        khat_r = torch.view_as_real(khat)
        torch.addcmul(sys_r, khat_r, scale2, out=khat_r)
        kinv = torch.view_as_real(torch.fft.ifft2(khat, norm="ortho"))
        torch.sub(q1, kinv.permute(0, 1, 4, 2, 3), out=n1)
        # regulariser block (Appendix 1.C.1): v2 = f(|q2|) q2, modulus over directions, re/im
        torch.mul(q2_first, q2_first, out=r2v)
        for t1, t2 in q2_parts:
            r2v.addcmul_(t1, t2)
        r2.sqrt_()
        f = rho.dual_factor(r, sigma_k, alpha)
        torch.mul(q2, f.view(fview), out=n2)
        # primal step: u_new = (u - tau (v1 + grad^* v2)) / (1 + tau eps), with
        # grad^* p = -p_y + p_y(shifted down) - p_x + p_x(shifted right)
        torch.add(xop, n1, alpha=-tau_k, out=xnp)
        xnr.add_(py, alpha=tau_k)
        xn_r1.add_(py_up, alpha=-tau_k)
        xnr.add_(px, alpha=tau_k)
        xn_c1.add_(px_left, alpha=-tau_k)
        if epsilon > 0:
            xnr.div_(1.0 + tau_k * epsilon)
        if accelerated:
            theta_k = 1.0 / math.sqrt(1.0 + 2.0 * epsilon * tau_k)
            tau_k, sigma_k = theta_k * tau_k, sigma_k / theta_k
            scale2, sys_r = data_factors(sigma_k)
        # ubar = u_new + theta (u_new - u): one lerp with weight 1 + theta; K ubar
        torch.lerp(xop, xnp, 1.0 + theta_k, out=kx1p)
        for a1, a0, o in grad_args:
            torch.sub(a1, a0, out=o)
        residual = None
        if check:  # Algorithm 1 stopping rule, from the norms of (u, v1, v2y, v2x) and changes
            torch.sub(nw, old, out=bank[2])
            norms = torch.linalg.vector_norm(pair, dim=3).tolist()
            residual = [_residual(a, d, tiny) for a, d in zip(*norms, strict=True)]
        it = 1 - it
        objective = None
        if track_objective and check:
            xc = _to_complex(xnp)
            objective = (data.value(xc) + regb.value(gradient(xc))
                         + 0.5 * epsilon * squared_norm(xnr))
        hist.record(objective, float("nan") if residual is None else max(residual))
        if callback is not None:
            callback(k, _to_complex(xnp))
        if residual is not None and max(residual) <= tol:
            hist.converged = True
            break
    st = bank[it]
    v2 = st[:, 4 * n :].view(b, 2, c, 2, h, w).transpose(1, 2).reshape(b, 2 * c, 2, h, w)
    return (
        _to_complex(planar(st[:, : 2 * n])),
        [_to_complex(planar(st[:, 2 * n : 4 * n])), _to_complex(v2).view(b, c, 2, h, w)],
        hist,
    )


def _residual(norms: list, changes: list, tiny: float) -> float:
    """Algorithm 1 residual of one image from the norms of (u, v1, v2y, v2x) and of their
    changes: :math:`\\|\\Delta u\\|/\\|u\\| + \\|\\Delta v\\|/\\|v\\|`."""
    nv = math.sqrt(sum(t * t for t in norms[1:]))
    dv = math.sqrt(sum(t * t for t in changes[1:]))
    return changes[0] / max(norms[0], tiny) + dv / max(nv, tiny)


def _to_complex(p: Tensor) -> Tensor:
    """Planar ``(B, C, 2, H, W)`` real -> complex ``(B, C, H, W)`` (a new tensor)."""
    return torch.complex(p[:, :, 0], p[:, :, 1])
