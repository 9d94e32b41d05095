"""Conjugate gradients and Newton-CG for the lower-level problem (thesis Algorithm 2).

:func:`conjugate_gradient` is batched (one independent SPD system per image) and works with the
real inner product :math:`\\mathrm{Re}\\langle\\cdot,\\cdot\\rangle` on complex images, for which
the Hessian of App. 1.D is self-adjoint. It accepts an optional SPD preconditioner (e.g.
:meth:`LowerLevel.preconditioner`, a k-space diagonal); preconditioning changes iteration
counts, not the solution.

:func:`newton_cg` is Algorithm 2: the Newton direction from CG on
:math:`D_u^2E(u^k)d=D_uE(u^k)`, then an Armijo backtracking line search with parameters
``ls_factor`` (:math:`\\tau`), ``c`` and ``maxls``, separately per image.

>>> import torch
>>> A = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64)).to(torch.complex128)
>>> b = torch.ones(1, 1, 1, 5, dtype=torch.complex128)
>>> x, info = conjugate_gradient(lambda v: v @ A.T, b, tol=1e-12)
>>> bool(torch.allclose(x.real.flatten(), 1 / torch.arange(1.0, 6.0, dtype=torch.float64)))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinv.bilevel.lower_level import LowerLevel, _rdot

__all__ = ["conjugate_gradient", "CGInfo", "newton_cg", "NewtonResult"]


def _bshape(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


@dataclass
class CGInfo:
    iterations: int
    residual: float  # max over the batch of ||r|| / ||b||


def conjugate_gradient(
    apply,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    precond=None,
    tol: float = 1e-10,
    maxiter: int = 1000,
) -> tuple[torch.Tensor, CGInfo]:
    """Solve :math:`Hx=b` for SPD ``apply`` (batched over axis 0) by (preconditioned) CG.

    Stops when :math:`\\|b-Hx\\|\\le\\mathrm{tol}\\,\\|b\\|` for every batch item.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    bnorm = _rdot(b, b).sqrt().clamp_min(1e-300)
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = _rdot(r, z)
    rel = float((_rdot(r, r).sqrt() / bnorm).max())
    it = 0
    while rel > tol and it < maxiter:
        it += 1
        hp = apply(p)
        php = _rdot(p, hp)
        a = torch.where(php > 0, rz / php.clamp_min(1e-300), torch.zeros_like(php))
        x = x + _bshape(a, x) * p
        r = r - _bshape(a, x) * hp
        rnorm = _rdot(r, r).sqrt()
        rel = float((rnorm / bnorm).max())
        if rel <= tol:
            break
        z = precond(r) if precond is not None else r
        rz_new = _rdot(r, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + _bshape(beta, p) * p
        rz = rz_new
    return x, CGInfo(iterations=it, residual=rel)


@dataclass
class NewtonResult:
    u: torch.Tensor
    iterations: int
    cg_iterations: int
    grad_norm: float  # max over the batch of ||D_u E|| / ||D_u E(u0)||


@torch.no_grad()
def newton_cg(
    ll: LowerLevel,
    s: torch.Tensor,
    alpha: float,
    u0: torch.Tensor | None = None,
    maxit: int = 50,
    gtol: float = 1e-12,
    maxls: int = 20,
    ls_factor: float = 0.5,
    c: float = 1e-3,
    precondition: bool = True,
    cg_maxiter: int = 2000,
) -> NewtonResult:
    """Algorithm 2 (Newton-CG with Armijo search), started at ``u0`` (zero-filled if None).

    Stops when :math:`\\|D_uE(u^k)\\|\\le\\mathrm{gtol}\\,\\|D_uE(u^0)\\|` for all images, or
    when the line search fails (``maxls`` reductions), as in Algorithm 2. The inner CG uses the
    forcing tolerance :math:`\\min(0.1,\\sqrt{\\|g\\|/\\|g_0\\|})` (superlinear rate).
    """
    if ll.reg.is_none or alpha == 0:
        return NewtonResult(u=ll.closed_form_none(s), iterations=0, cg_iterations=0, grad_norm=0.0)
    u = ll.zero_filled(s) if u0 is None else u0.clone()
    g = ll.gradient(u, s, alpha)
    g0 = _rdot(g, g).sqrt().clamp_min(1e-300)
    total_cg, k, rel = 0, 0, 1.0
    e = ll.energy(u, s, alpha)
    for k in range(1, maxit + 1):
        gn = _rdot(g, g).sqrt()
        rel = float((gn / g0).max())
        if rel <= gtol:
            k -= 1
            break
        curv = ll.curvature(u)
        pre = ll.preconditioner(u, s, alpha, curvature=curv) if precondition else None
        forcing = min(0.1, (gn / g0).max().sqrt().item())
        d, info = conjugate_gradient(
            lambda w, u=u, curv=curv: ll.hvp(u, w, s, alpha, curvature=curv),
            g,
            precond=pre,
            tol=forcing,
            maxiter=cg_maxiter,
        )
        total_cg += info.iterations
        m = _rdot(d, g)
        step = torch.ones_like(m)
        done = torch.zeros_like(m, dtype=torch.bool)
        for _ in range(maxls):
            e_new = ll.energy(u - _bshape(step, u) * d, s, alpha)
            # Armijo test, relaxed by the rounding level of E so that Newton can finish its
            # quadratic phase once energy differences drop below machine precision.
            slack = 8 * torch.finfo(e.dtype).eps * e.abs()
            done = done | (e_new - e <= -c * step * m + slack)
            if bool(done.all()):
                break
            step = torch.where(done, step, step * ls_factor)
        if not bool(done.any()):
            break
        step = torch.where(done, step, torch.zeros_like(step))
        u_new = u - _bshape(step, u) * d
        g_new = ll.gradient(u_new, s, alpha)
        gn_new = _rdot(g_new, g_new).sqrt()
        if bool((gn_new >= gn).all()) and bool((gn / g0 < 1e-6).all()):
            break  # stagnation at rounding level: keep the better iterate
        u, g = u_new, g_new
        e = ll.energy(u, s, alpha)
    gn = _rdot(g, g).sqrt()
    rel = float((gn / g0).max())
    return NewtonResult(u=u, iterations=k, cg_iterations=total_cg, grad_norm=rel)
