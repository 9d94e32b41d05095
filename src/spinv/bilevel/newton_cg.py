"""Newton-CG for the lower-level problem (thesis Algorithm 2).

:func:`newton_cg` is Algorithm 2: the Newton direction from the batched, preconditioned CG of
:func:`spinv.linalg.conjugate_gradient` on :math:`D_u^2E(u^k)d=D_uE(u^k)` (real inner product
:math:`\\mathrm{Re}\\langle\\cdot,\\cdot\\rangle` on complex images, for which the Hessian of
App. 1.D is self-adjoint; preconditioner :meth:`LowerLevel.preconditioner`, a k-space diagonal,
which changes iteration counts, not the solution), then an Armijo backtracking line search with
parameters of :class:`~spinv.variational.solvers.newton_cg.Armijo`, separately per image.

Why not :func:`spinv.variational.solvers.newton_cg.newton_cg`: the two are Algorithm 2 with
different, deliberate conventions, and the stored sampling results were computed with these:

- stopping *relative* to the initial gradient, :math:`\\|D_uE(u^k)\\|\\le\\mathrm{gtol}\\,
  \\|D_uE(u^0)\\|` (the bilevel problems are solved to :math:`10^{-12}` relative, whatever the
  scale of the data), where the generic solver takes an absolute tolerance;
- forcing tolerance :math:`\\min(0.1,\\sqrt{\\|g\\|/\\|g_0\\|})` *relative* to
  :math:`\\|g\\|` with the k-space preconditioner, vs the unpreconditioned
  :math:`\\min(0.5,\\sqrt{\\|g\\|})\\|g\\|` there;
- a line search that lets an image whose search fails keep its iterate while the others move
  (the generic solver stops the whole batch), and a stagnation stop once the gradient no longer
  decreases at rounding level (needed for the hypergradient's :math:`10^{-12}` accuracy).

Both reach the same minimiser (``tests/bilevel/test_solvers.py`` pins them on a small problem).

>>> import torch
>>> from spinv.bilevel.lower_level import LowerLevel, make_regulariser
>>> u_true = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0),
...                     dtype=torch.float64)
>>> ll = LowerLevel.from_images(u_true, make_regulariser("tv", gamma=0.05), noise=0.0)
>>> res = newton_cg(ll, torch.full((8, 8), 0.7, dtype=torch.float64), 1e-3)
>>> res.grad_norm < 1e-10
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinv.bilevel.lower_level import LowerLevel
from spinv.linalg import batch_view, conjugate_gradient, inner
from spinv.variational.solvers.newton_cg import Armijo

__all__ = ["newton_cg", "NewtonResult"]


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
    line_search: Armijo | None = None,
    precondition: bool = True,
    cg_maxiter: int = 2000,
) -> NewtonResult:
    """Algorithm 2 (Newton-CG with Armijo search), started at ``u0`` (zero-filled if None).

    Stops when :math:`\\|D_uE(u^k)\\|\\le\\mathrm{gtol}\\,\\|D_uE(u^0)\\|` for all images, or
    when the line search (:class:`~spinv.variational.solvers.newton_cg.Armijo`, default
    ``Armijo()``) fails for every image, as in Algorithm 2. The inner CG uses the forcing
    tolerance :math:`\\min(0.1,\\sqrt{\\|g\\|/\\|g_0\\|})` (superlinear rate).
    """
    search = Armijo() if line_search is None else line_search
    if ll.reg.is_none or alpha == 0:
        return NewtonResult(u=ll.closed_form_none(s), iterations=0, cg_iterations=0, grad_norm=0.0)
    u = ll.zero_filled(s) if u0 is None else u0.clone()
    g = ll.gradient(u, s, alpha)
    g0 = inner(g, g).sqrt().clamp_min(1e-300)
    total_cg, k, rel = 0, 0, 1.0
    e = ll.energy(u, s, alpha)
    for k in range(1, maxit + 1):
        gn = inner(g, g).sqrt()
        rel = float((gn / g0).max())
        if rel <= gtol:
            k -= 1
            break
        curv = ll.curvature(u)
        pre = ll.preconditioner(u, s, alpha, curvature=curv) if precondition else None
        forcing = min(0.1, (gn / g0).max().sqrt().item())
        cg = conjugate_gradient(
            lambda w, u=u, curv=curv: ll.hvp(u, w, s, alpha, curvature=curv),
            g,
            rtol=forcing,
            max_iterations=cg_maxiter,
            preconditioner=pre,
        )
        d = cg.x
        total_cg += cg.iterations
        m = inner(d, g)
        step = torch.ones_like(m)
        done = torch.zeros_like(m, dtype=torch.bool)
        for _ in range(search.max_steps):
            e_new = ll.energy(u - batch_view(step, u) * d, s, alpha)
            # Armijo test, relaxed by the rounding level of E so that Newton can finish its
            # quadratic phase once energy differences drop below machine precision.
            slack = 8 * torch.finfo(e.dtype).eps * e.abs()
            done = done | (e_new - e <= -search.c * step * m + slack)
            if bool(done.all()):
                break
            step = torch.where(done, step, step * search.factor)
        if not bool(done.any()):
            break
        step = torch.where(done, step, torch.zeros_like(step))
        u_new = u - batch_view(step, u) * d
        g_new = ll.gradient(u_new, s, alpha)
        gn_new = inner(g_new, g_new).sqrt()
        if bool((gn_new >= gn).all()) and bool((gn / g0 < 1e-6).all()):
            break  # stagnation at rounding level: keep the better iterate
        u, g = u_new, g_new
        e = ll.energy(u, s, alpha)
    gn = inner(g, g).sqrt()
    rel = float((gn / g0).max())
    return NewtonResult(u=u, iterations=k, cg_iterations=total_cg, grad_norm=rel)
