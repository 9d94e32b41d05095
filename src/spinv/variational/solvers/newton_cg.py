"""Newton-CG with Armijo backtracking (thesis Algorithm 2), batched over images.

For a smooth, strongly convex energy :math:`E`: at :math:`u^k` solve
:math:`D^2E(u^k)d = DE(u^k)` by conjugate gradients (Hessian-vector products only, Appendix 1.D),
set :math:`m = \\langle d, DE(u^k)\\rangle` and backtrack :math:`\\sigma\\leftarrow\\tau\\sigma`
from :math:`\\sigma=1` until :math:`E(u^k-\\sigma d)-E(u^k)\\le -c\\,\\sigma m` (at most
``maxls`` times; if the search fails the loop stops, as in Algorithm 2); then
:math:`u^{k+1}=u^k-\\sigma d`. Defaults (:class:`Armijo`) :math:`\\tau=0.5`, :math:`c=10^{-3}`,
``maxls = 20`` as
in thesis §1.2.3 (the test tolerates a rounding error of :math:`8\\epsilon_{\\text{mach}}|E|`). The
optimality residual is :math:`\\|DE(u^k)\\|`; iterations stop once it is
below ``tol`` for every image. The direction comes from :func:`spinv.linalg.conjugate_gradient`
(each image frozen once it meets its tolerance) with the absolute per-image tolerance of the
forcing sequence
:math:`\\min(0.5, \\sqrt{\\|DE\\|})\\,\\|DE\\|` (Nocedal & Wright, Alg. 7.1).

>>> import torch
>>> Q = torch.tensor([3.0, 1.0], dtype=torch.float64).reshape(1, 1, 1, 2)
>>> E = lambda u: 0.5 * (Q * u * u).sum(dim=(1, 2, 3)) - u.sum(dim=(1, 2, 3))
>>> u, h = newton_cg(E, lambda u: Q * u - 1, lambda u, v: Q * v, torch.zeros(1, 1, 1, 2,
...                  dtype=torch.float64))
>>> [round(x, 6) for x in u.flatten().tolist()], h.converged
([0.333333, 1.0], True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from spinv.linalg import batch_view, conjugate_gradient, inner
from spinv.variational.solvers.history import History, check_iterations

Tensor = torch.Tensor


@dataclass(frozen=True)
class Armijo:
    """Armijo backtracking of Algorithm 2 (thesis §1.2.3): from :math:`\\sigma=1`,
    :math:`\\sigma\\leftarrow\\tau\\sigma` (``factor``) until
    :math:`E(u-\\sigma d)-E(u)\\le -c\\,\\sigma\\langle d, DE(u)\\rangle`, at most ``max_steps``
    reductions. Shared by both Newton-CG solvers (this one and
    :func:`spinv.bilevel.newton_cg.newton_cg`)."""

    factor: float = 0.5
    c: float = 1e-3
    max_steps: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.factor < 1:
            raise ValueError(f"factor={self.factor!r}: expected a float in (0, 1)")
        if not 0 < self.c < 1:
            raise ValueError(f"c={self.c!r}: expected a float in (0, 1)")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or (
                self.max_steps < 0):
            raise ValueError(f"max_steps={self.max_steps!r}: expected an integer >= 0")


def newton_cg(
    energy: Callable[[Tensor], Tensor],
    gradient: Callable[[Tensor], Tensor],
    hvp: Callable[[Tensor, Tensor], Tensor],
    u0: Tensor,
    iterations: int = 50,
    tol: float = 1e-8,
    cg_iterations: int = 100,
    line_search: Armijo | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, History]:
    """Algorithm 2. ``energy(u)`` returns ``(B,)``; ``hvp(u, v)`` is :math:`D^2E(u)v`;
    ``line_search`` defaults to :class:`Armijo` ``()``."""
    check_iterations(iterations)
    check_iterations(cg_iterations, "cg_iterations")
    search = Armijo() if line_search is None else line_search
    tau, c, maxls = search.factor, search.c, search.max_steps
    if not isinstance(u0, torch.Tensor):
        raise TypeError(f"u0: expected a torch.Tensor, got {type(u0).__name__}")
    hist = History()
    u = u0.clone()
    e = energy(u)
    g = gradient(u)
    gnorm = inner(g, g).sqrt()
    hist.extra["cg_iterations"] = []
    hist.extra["initial_residual"] = float(gnorm.max())
    if bool((gnorm <= tol).all()):
        hist.converged = True
        return u, hist
    for k in range(iterations):
        forcing = torch.minimum(torch.full_like(gnorm, 0.5), gnorm.sqrt()) * gnorm
        u_k = u

        def hess(v, u_k=u_k):
            return hvp(u_k, v)

        cg = conjugate_gradient(hess, g, rtol=0.0, atol=forcing, max_iterations=cg_iterations,
                                freeze_converged=True)
        d = cg.x
        hist.extra["cg_iterations"].append(cg.iterations)
        m = inner(d, g)
        done = gnorm <= tol
        slack = 8 * torch.finfo(e.dtype).eps  # tolerate rounding of E near the minimiser
        sigma = torch.where(done, 0.0, torch.ones_like(m))
        failed = False
        for i in range(maxls + 1):
            trial = u - batch_view(sigma, u) * d
            e_trial = energy(trial)
            ok = (e_trial - e <= -c * sigma * m + slack * e.abs()) | done
            if bool(ok.all()):
                break
            if i == maxls:
                failed = True
                break
            sigma = torch.where(ok, sigma, tau * sigma)
        if failed:
            hist.extra["line_search_failed"] = True
            break
        u, e = trial, e_trial
        g = gradient(u)
        gnorm = inner(g, g).sqrt()
        hist.record(e, gnorm)
        if callback is not None:
            callback(k, u)
        if bool((gnorm <= tol).all()):
            hist.converged = True
            break
    return u, hist
