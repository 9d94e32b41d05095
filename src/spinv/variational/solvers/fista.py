"""Proximal gradient descent and FISTA (Beck & Teboulle 2009), batched over images.

Solves :math:`\\min_x f(x) + g(x)` with :math:`f` smooth (:math:`L`-Lipschitz gradient) and
:math:`g` proximable:

.. math::
    x^{k+1} = \\operatorname{prox}_{g/L}\\big(y^k - \\tfrac1L\\nabla f(y^k)\\big),\\quad
    t_{k+1} = \\tfrac{1+\\sqrt{1+4t_k^2}}2,\\quad
    y^{k+1} = x^{k+1} + \\tfrac{t_k-1}{t_{k+1}}(x^{k+1}-x^k),

with :math:`y^k = x^k` for PGD. With ``backtracking=True`` the step :math:`1/L` is found per
image by the rule :math:`f(x^{k+1})\\le f(y)+\\langle\\nabla f(y),x^{k+1}-y\\rangle+\\tfrac L2
\\|x^{k+1}-y\\|^2`, increasing :math:`L\\leftarrow\\eta L`.

The recorded optimality residual is the norm of the gradient mapping
:math:`L\\|y^k - x^{k+1}\\|` (zero exactly at a minimiser); iterations stop when the relative
change :math:`\\|x^{k+1}-x^k\\|/\\|x^k\\|\\le` ``tol`` for every image.

>>> import torch
>>> b = torch.tensor([[[[1.0, -2.0]]]], dtype=torch.float64)
>>> f = lambda x: 0.5 * ((x - b) ** 2).sum(dim=(1, 2, 3))
>>> x, hist = fista(f, lambda x: x - b, torch.zeros_like(b), FISTAOptions(iterations=5),
...                 lipschitz=1.0)
>>> x.flatten().tolist(), hist.iterations
([1.0, -2.0], 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from spinv.linalg import batch_view, inner
from spinv.variational.solvers.history import History, check_iterations, check_number

Tensor = torch.Tensor


@dataclass(frozen=True)
class FISTAOptions:
    """Knobs of :func:`fista` (Beck & Teboulle 2009; the proximal-gradient scheme of thesis
    §1.2.3 on :math:`\\min_x f(x)+g(x)`).

    ``iterations``: at most this many iterations (>= 0). ``tol``: stop when the relative change
    :math:`\\|x^{k+1}-x^k\\|/\\|x^k\\|` is ``<= tol`` for every image. ``backtracking``: find
    the step :math:`1/L` per image by the sufficient-decrease rule of the module docstring,
    multiplying :math:`L` by ``eta`` (> 1) until it holds (``lipschitz`` is then the first
    guess). ``accelerate``: FISTA's momentum :math:`t_k` (``False``: plain proximal gradient
    descent, :func:`pgd`). ``track_objective``: record :math:`f(x)+g(x)` in the history (one
    more evaluation of :math:`f` and :math:`g` per iteration).
    """

    iterations: int = 100
    tol: float = 1e-8
    backtracking: bool = False
    eta: float = 2.0
    accelerate: bool = True
    track_objective: bool = True

    def __post_init__(self) -> None:
        check_iterations(self.iterations, "FISTAOptions.iterations")
        check_number(self.tol, "FISTAOptions.tol", inclusive=True)
        check_number(self.eta, "FISTAOptions.eta", 1.0)
        for name in ("backtracking", "accelerate", "track_objective"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"FISTAOptions.{name}={getattr(self, name)!r}: expected a bool")


def fista(
    f: Callable[[Tensor], Tensor],
    grad_f: Callable[[Tensor], Tensor],
    x0: Tensor,
    options: FISTAOptions | None = None,
    *,
    lipschitz: float | None = None,
    prox_g: Callable[[Tensor, Tensor], Tensor] | None = None,
    g: Callable[[Tensor], Tensor] | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, History]:
    """FISTA (or PGD, ``options.accelerate=False``) for :math:`f + g`; returns ``(x, history)``.

    ``f(x)`` and ``g(x)`` return per-image values ``(B,)``; ``grad_f`` is :math:`\\nabla f`;
    ``prox_g(v, step)`` computes :math:`\\operatorname{prox}_{\\mathrm{step}\\,g}(v)` where
    ``step`` is a ``(B,)`` tensor (``None``: :math:`g=0`). ``lipschitz`` is :math:`L`, the
    Lipschitz constant of :math:`\\nabla f` (required unless ``options.backtracking``, where it
    is the initial guess, default 1). ``x0`` is the warm start; ``options`` the iteration
    budget, tolerance, backtracking and history (:class:`FISTAOptions`; ``None``: defaults);
    ``callback(k, x)`` runs after every iteration.
    """
    options = FISTAOptions() if options is None else options
    if not isinstance(options, FISTAOptions):
        raise TypeError(f"options={options!r}: expected a FISTAOptions or None")
    backtracking, eta = options.backtracking, options.eta
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0: expected a torch.Tensor, got {type(x0).__name__}")
    if lipschitz is None and not backtracking:
        raise ValueError(
            "lipschitz=None: pass the Lipschitz constant of grad f or "
            "FISTAOptions(backtracking=True)"
        )
    if lipschitz is not None and not (isinstance(lipschitz, (int, float)) and lipschitz > 0):
        raise ValueError(f"lipschitz={lipschitz!r}: expected a positive float")
    real = x0.real.dtype if x0.is_complex() else x0.dtype
    batch = x0.shape[0]
    L = torch.full((batch,), float(lipschitz or 1.0), dtype=real, device=x0.device)
    prox = prox_g if prox_g is not None else (lambda v, step: v)
    hist = History()
    x = x0.clone()
    y = x
    t = 1.0
    for k in range(options.iterations):
        gy = grad_f(y)
        if backtracking:
            fy = f(y)
            for _ in range(60):
                x_new = prox(y - gy / batch_view(L, gy), 1.0 / L)
                d = x_new - y
                ok = f(x_new) <= fy + inner(gy, d) + 0.5 * L * inner(d, d) + 1e-12 * fy.abs()
                if bool(ok.all()):
                    break
                L = torch.where(ok, L, eta * L)
        else:
            x_new = prox(y - gy / batch_view(L, gy), 1.0 / L)
        gap, diff = y - x_new, x_new - x
        gm = L * inner(gap, gap).sqrt()
        change = inner(diff, diff).sqrt() / inner(x, x).sqrt().clamp(min=torch.finfo(real).tiny)
        if options.accelerate:
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            y = x_new + ((t - 1.0) / t_new) * (x_new - x)
            t = t_new
        else:
            y = x_new
        x = x_new
        obj = None
        if options.track_objective:
            obj = f(x) + (g(x) if g is not None else 0.0)
        hist.record(obj, gm)
        if callback is not None:
            callback(k, x)
        if bool((change <= options.tol).all()):
            hist.converged = True
            break
    hist.extra["lipschitz"] = L.tolist()
    return x, hist


def pgd(
    f: Callable[[Tensor], Tensor],
    grad_f: Callable[[Tensor], Tensor],
    x0: Tensor,
    options: FISTAOptions | None = None,
    **problem,
) -> tuple[Tensor, History]:
    """Proximal gradient descent: :func:`fista` with ``accelerate=False`` (same arguments)."""
    options = FISTAOptions() if options is None else options
    return fista(f, grad_f, x0, replace(options, accelerate=False), **problem)
