"""Plug-and-Play proximal gradient (Algorithm 6) and PnP-ADMM with any denoiser.

Data discrepancy :math:`E_y(u) = \\tfrac12\\|Au - y\\|^2`, :math:`\\nabla E_y(u) = A^*(Au-y)`.

*PnP proximal gradient* (thesis Algorithm 6): :math:`u_{k+1} = T(u_k)`,
:math:`T = \\Phi\\circ(\\mathrm{id}-\\tau\\nabla E_y)`. For :math:`0<\\tau<2/\\|A\\|^2` the gradient
step is :math:`\\tau\\|A\\|^2/2`-averaged; if the denoiser :math:`\\Phi` is averaged, so is
:math:`T` (Theorem 3.2.4), and the Krasnosel'skii--Mann theorem gives convergence of the iterates
to a fixed point (when one exists) with a nonincreasing fixed-point residual
:math:`\\|u_{k+1}-u_k\\| = \\|Tu_k-u_k\\|\\to 0`. For a merely nonexpansive or unconstrained
:math:`\\Phi` there is no such guarantee (§3.1, Sommerhoff et al. 2019).

*PnP-ADMM* (Venkatakrishnan et al. 2013), penalty :math:`\\rho>0`:

.. math:: x_{k+1} = \\arg\\min_x E_y(x) + \\tfrac\\rho2\\|x - (z_k - w_k)\\|^2,\\quad
          z_{k+1} = \\Phi(x_{k+1} + w_k),\\quad w_{k+1} = w_k + x_{k+1} - z_{k+1};

the :math:`x`-step solves :math:`(A^*A+\\rho I)x = A^*y + \\rho(z_k-w_k)` by conjugate gradients
(warm-started; the whole batch is one system, so the few CG updates share their step lengths
across the images). The residual recorded is :math:`\\|z_{k+1}-z_k\\| + \\|w_{k+1}-w_k\\|`.
PnP-ADMM is Douglas--Rachford splitting; its iteration operator
:math:`\\tfrac12(I + (2\\Phi - I)(2P - I))` (:math:`P` the data prox) is averaged when
:math:`2\\Phi - I` is nonexpansive, i.e. :math:`\\Phi` *firmly* nonexpansive
(:math:`\\tfrac12`-averaged), a stronger requirement than for Algorithm 6: e.g. the residual
denoiser :math:`\\mathrm{id}-\\gamma\\Gamma` (``tied=True``) qualifies for :math:`\\gamma\\le 1`
only, and a :math:`0.995`-averaged one can make ADMM diverge on CT while PGD converges.

Complex MRI images (complex64, ``C=1``) are denoised with a real denoiser by stacking real and
imaginary parts along the batch axis (``complex_mode="split"``, a block-diagonal action that
keeps Lipschitz constants and averagedness) or as two channels (``"channels"``).

>>> import torch
>>> from spinv.operators import Identity
>>> y = torch.full((1, 1, 4, 4), 2.0)
>>> res = pnp_proximal_gradient(Identity(), y, lambda u: 0.5 * u, step=1.0, iterations=3)
>>> float(res.x.mean()), res.residuals[-1]  # u_1 = Phi(y) = 1 is already the fixed point
(1.0, 0.0)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from spinv.atomic import atomic_save_figure
from spinv.linalg import conjugate_gradient, power_iteration, random_vector, total_norm
from spinv.operators.base import LinearOperator

__all__ = [
    "PnPResult",
    "RelaxedDenoiser",
    "pnp_proximal_gradient",
    "pnp_admm",
    "operator_norm",
    "plot_fixed_point_residuals",
    "compare_fixed_point_residuals",
]

Denoiser = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PnPResult:
    """Final iterate ``x`` and per-iteration histories (Python floats)."""

    x: torch.Tensor
    residuals: list[float] = field(default_factory=list)  # fixed-point residual per iteration
    relative_residuals: list[float] = field(default_factory=list)  # divided by ||u_0|| (or 1)
    objective: list[float] = field(default_factory=list)  # data discrepancy E_y(u_k)
    iterations: int = 0


class RelaxedDenoiser(torch.nn.Module):
    """The relaxed denoiser :math:`\\Phi_\\lambda = (1-\\lambda)\\,\\mathrm{id} + \\lambda\\Phi`,
    :math:`\\lambda\\in(0,1]` (``weight``).

    If :math:`\\Phi = (1-\\alpha)\\mathrm{id} + \\alpha N` is :math:`\\alpha`-averaged
    (Definition 3.2.3, :math:`N` nonexpansive), then
    :math:`\\Phi_\\lambda = (1-\\lambda\\alpha)\\mathrm{id} + \\lambda\\alpha N` is
    :math:`\\lambda\\alpha`-averaged; so Algorithm 6 with :math:`\\Phi_\\lambda` still converges
    (Theorem 3.2.4), and PnP-ADMM's Douglas--Rachford operator is averaged once
    :math:`\\lambda\\alpha\\le\\tfrac12` (firmly nonexpansive :math:`\\Phi_\\lambda`). A Lipschitz
    bound :math:`L` of :math:`\\Phi` gives :math:`(1-\\lambda)+\\lambda L`. The certificates are
    computed afresh from the wrapped denoiser's (float32) weights.

    >>> import torch
    >>> half = RelaxedDenoiser(lambda u: -u, 0.25)  # -id is nonexpansive: 1-averaged
    >>> half(torch.ones(1, 1, 2, 2)).flatten().tolist()
    [0.5, 0.5, 0.5, 0.5]
    """

    def __init__(self, denoiser: Denoiser, weight: float) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                0 < weight <= 1):
            raise ValueError(f"weight={weight!r}: expected a number in (0, 1]")
        self.denoiser = denoiser
        self.weight = float(weight)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.weight == 1.0:
            return self.denoiser(u)
        return (1.0 - self.weight) * u + self.weight * self.denoiser(u)

    def certified_averagedness(self) -> float | None:
        """:math:`\\lambda\\alpha` if the wrapped denoiser certifies :math:`\\alpha`, else None."""
        get = getattr(self.denoiser, "certified_averagedness", None)
        alpha = get() if callable(get) else None
        return None if alpha is None else self.weight * alpha

    def certified_lipschitz(self) -> float | None:
        """:math:`(1-\\lambda)+\\lambda L` from the wrapped denoiser's certified bound."""
        for name in ("certified_lipschitz", "lipschitz_upper_bound"):
            get = getattr(self.denoiser, name, None)
            if callable(get):
                return (1.0 - self.weight) + self.weight * float(get())
        return None


def _wrap_denoiser(denoiser: Denoiser, complex_mode: str) -> Denoiser:
    if complex_mode not in ("split", "channels"):
        raise ValueError(f"complex_mode={complex_mode!r}: expected 'split' or 'channels'")

    def apply(u: torch.Tensor) -> torch.Tensor:
        if not u.is_complex():
            return denoiser(u)
        if complex_mode == "split":
            b = u.shape[0]
            out = denoiser(torch.cat([u.real, u.imag], dim=0))
            return torch.complex(out[:b], out[b:])
        out = denoiser(torch.cat([u.real, u.imag], dim=1))
        c = u.shape[1]
        return torch.complex(out[:, :c], out[:, c:])

    return apply


def _check(operator, y, iterations) -> None:
    if not isinstance(operator, LinearOperator) and not (
        hasattr(operator, "forward") and hasattr(operator, "adjoint")
    ):
        raise TypeError(f"operator: expected a LinearOperator, got {type(operator).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected a tensor, got {type(y).__name__}")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected a positive integer")


def operator_norm(operator, like: torch.Tensor, iterations: int = 100, seed: int = 0,
                  tol: float = 1e-6) -> float:
    """:math:`\\|A\\|` by power iteration on :math:`A^*A` (:func:`spinv.linalg.power_iteration`,
    relative tolerance ``tol`` on :math:`\\|A\\|^2`) from a standard normal start of ``like``'s
    shape, dtype and device drawn with ``seed``; a (tight) lower bound."""
    start = random_vector(tuple(like.shape), like.dtype, like.device,
                          torch.Generator().manual_seed(seed))
    return power_iteration(lambda v: operator.adjoint(operator.forward(v)), start,
                           iterations=iterations, tol=tol).value


@torch.no_grad()
def pnp_proximal_gradient(
    operator: LinearOperator,
    y: torch.Tensor,
    denoiser: Denoiser,
    x0: torch.Tensor | None = None,
    step: float | None = None,
    iterations: int = 100,
    tol: float | None = 0.0,
    complex_mode: str = "split",
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> PnPResult:
    """Algorithm 6: :math:`u\\leftarrow\\Phi(u - \\tau A^*(Au - y))`.

    ``step`` :math:`\\tau` defaults to :math:`1/\\|A\\|^2` (power iteration on ``x0``'s shape);
    ``x0`` defaults to :math:`A^*y`. Stops early when the relative fixed-point residual is
    ``<= tol`` (``tol=None``: never). ``callback(k, u_k)`` is called after every iteration
    ``k = 1, 2, ...``.
    """
    _check(operator, y, iterations)
    u = operator.adjoint(y) if x0 is None else x0.clone()
    if step is None:
        step = 1.0 / max(operator_norm(operator, u) ** 2, 1e-12)
    if not step > 0:
        raise ValueError(f"step={step!r}: expected a positive number")
    den = _wrap_denoiser(denoiser, complex_mode)
    scale = total_norm(u) or 1.0
    res = PnPResult(u)
    for k in range(iterations):
        r = operator.forward(u) - y
        res.objective.append(0.5 * total_norm(r) ** 2)
        u_new = den(u - step * operator.adjoint(r))
        d = total_norm(u_new - u)
        res.residuals.append(d)
        res.relative_residuals.append(d / scale)
        u = u_new
        res.iterations = k + 1
        if callback is not None:
            callback(k + 1, u)
        if tol is not None and d / scale <= tol:
            break
    res.x = u
    return res


def _data_prox(normal_plus, rhs: torch.Tensor, x: torch.Tensor, iterations: int) -> torch.Tensor:
    """The ADMM :math:`x`-step: ``iterations`` CG updates on :math:`(A^*A+\\rho I)x = `
    ``rhs`` from ``x`` (relative tolerance :math:`10^{-8}`), the whole batch as *one* system
    (shared step lengths and stopping rule; a leading axis of length 1 for
    :func:`spinv.linalg.conjugate_gradient`)."""
    res = conjugate_gradient(lambda v: normal_plus(v[0])[None], rhs[None], x[None], rtol=1e-8,
                             max_iterations=iterations)
    return res.x[0]


@torch.no_grad()
def pnp_admm(
    operator: LinearOperator,
    y: torch.Tensor,
    denoiser: Denoiser,
    rho: float = 1.0,
    x0: torch.Tensor | None = None,
    iterations: int = 50,
    cg_iterations: int = 30,
    tol: float = 0.0,
    complex_mode: str = "split",
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> PnPResult:
    """PnP-ADMM (module doc); returns the denoised variable ``z`` as ``x``.
    ``callback(k, z_k)`` is called after every iteration ``k = 1, 2, ...``."""
    _check(operator, y, iterations)
    if not rho > 0:
        raise ValueError(f"rho={rho!r}: expected a positive number")
    den = _wrap_denoiser(denoiser, complex_mode)
    aty = operator.adjoint(y)
    z = aty.clone() if x0 is None else x0.clone()
    x = z.clone()
    w = torch.zeros_like(z)
    scale = total_norm(z) or 1.0

    def normal_plus(v: torch.Tensor) -> torch.Tensor:
        return operator.adjoint(operator.forward(v)) + rho * v

    res = PnPResult(z)
    for k in range(iterations):
        x = _data_prox(normal_plus, aty + rho * (z - w), x, cg_iterations)
        z_new = den(x + w)
        w_new = w + x - z_new
        d = total_norm(z_new - z) + total_norm(w_new - w)
        z, w = z_new, w_new
        res.objective.append(0.5 * total_norm(operator.forward(z) - y) ** 2)
        res.residuals.append(d)
        res.relative_residuals.append(d / scale)
        res.iterations = k + 1
        if callback is not None:
            callback(k + 1, z)
        if d / scale <= tol:
            break
    res.x = z
    return res


def plot_fixed_point_residuals(histories: dict[str, list[float]], path: str | os.PathLike,
                               title: str = "PnP fixed-point residual") -> Path:
    """Semilog plot of residual histories (one line per denoiser), saved atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not histories:
        raise ValueError("histories: expected at least one named residual history")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, hist in histories.items():
        ax.semilogy(range(1, len(hist) + 1), [max(h, 1e-16) for h in hist], label=name)
    ax.set_xlabel("iteration k")
    ax.set_ylabel(r"$\|u_{k+1}-u_k\|\,/\,\|u_0\|$")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, path)
    return path


def compare_fixed_point_residuals(
    operator: LinearOperator,
    y: torch.Tensor,
    denoisers: dict[str, Denoiser],
    path: str | os.PathLike | None = None,
    method: str = "pgd",
    iterations: int = 100,
    **kwargs,
) -> dict[str, PnPResult]:
    """Run PnP (``method`` ``"pgd"`` or ``"admm"``) with each denoiser, optionally plot."""
    if method not in ("pgd", "admm"):
        raise ValueError(f"method={method!r}: expected 'pgd' or 'admm'")
    run = pnp_proximal_gradient if method == "pgd" else pnp_admm
    results = {name: run(operator, y, d, iterations=iterations, **kwargs)
               for name, d in denoisers.items()}
    if path is not None:
        plot_fixed_point_residuals({n: r.relative_residuals for n, r in results.items()}, path,
                                   title=f"PnP-{method.upper()} fixed-point residual")
    return results
