"""Validation protocol of the PnP experiments (thesis ch. 3, Algorithm 6 and PnP-ADMM): free
parameters are chosen on the *validation* split, then the test split is reconstructed once.

The free parameters of Plug-and-Play are the denoiser's strength and the data weight:

- PnP-PGD (Algorithm 6): :math:`u_{k+1} = \\Phi_\\lambda(u_k - \\tau A^*(Au_k-y))` with the
  relaxed denoiser :math:`\\Phi_\\lambda = (1-\\lambda)\\mathrm{id}+\\lambda\\Phi`
  (:class:`~spinv.learned.pnp.RelaxedDenoiser`; :math:`\\lambda\\alpha`-averaged when
  :math:`\\Phi` is :math:`\\alpha`-averaged, Definition 3.2.3) and the step
  :math:`\\tau = c/\\|A\\|^2`, :math:`c\\in(0,2)` (then the gradient step is
  :math:`c/2`-averaged and the iteration map averaged, Theorem 3.2.4);
- PnP-ADMM: penalty :math:`\\rho = r\\|A\\|^2` and the weight :math:`\\lambda`; for a
  certified averaged denoiser only weights with :math:`\\lambda\\alpha\\le\\tfrac12` are
  searched (a firmly nonexpansive :math:`\\Phi_\\lambda` makes the Douglas--Rachford operator
  averaged, see :mod:`spinv.learned.pnp`);
- the noise level :math:`\\sigma` the denoiser was trained for (one denoiser per value);
- TV: the weight :math:`\\alpha` of :math:`\\tfrac12\\|Au-y\\|^2+\\alpha\\,TV(u)`.

:func:`grid_search` scores every point of a grid by the mean PSNR (data range 1) of the final
iterate on the validation slices; :func:`~spinv.variational.reconstruct.log_search` refines a
1-D logarithmic grid by golden sections (TV's :math:`\\alpha`).

>>> grid_search(lambda p: -(p["w"] - 0.3) ** 2, [{"w": w} for w in (0.1, 0.3, 0.9)])[0]
{'w': 0.3}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from spinv.learned.pnp import RelaxedDenoiser, operator_norm, pnp_admm, pnp_proximal_gradient

__all__ = ["Case", "PnPSettings", "evenly_spaced", "grid_search", "image_metrics", "make_case",
           "run_pnp_method", "run_tv"]


@dataclass
class Case:
    """Ground truths ``truth`` ``(B, 1, n, n)``, data ``y``, the analytic reconstruction,
    the initial iterate ``x0``, the problem (operator, simulation) and :math:`\\|A\\|^2`."""

    problem: Any
    truth: torch.Tensor
    y: torch.Tensor
    analytic: torch.Tensor
    x0: torch.Tensor
    op_norm2: float


def evenly_spaced(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all of them for ``None``).

    >>> evenly_spaced(14, 4), evenly_spaced(3, None)
    ([0, 4, 9, 13], [0, 1, 2])
    """
    if n is None or n >= n_total:
        return list(range(n_total))
    if n == 1:
        return [0]
    return [round(i * (n_total - 1) / (n - 1)) for i in range(n)]


def make_case(problem, truth: torch.Tensor, seed: int, init: str = "analytic") -> Case:
    """Simulate data of the slices ``truth`` (noise fixed by ``seed``) and the start ``x0``
    (``init``: ``"analytic"`` FBP / zero filling, ``"adjoint"`` :math:`A^*y`, ``"zeros"``)."""
    y = problem.simulate(truth, seed=seed)
    analytic = problem.analytic(y)
    x0 = {"analytic": analytic, "adjoint": problem.operator.adjoint(y),
          "zeros": torch.zeros_like(analytic)}.get(init)
    if x0 is None:
        raise ValueError(f"init={init!r}: expected 'analytic', 'adjoint' or 'zeros'")
    norm2 = operator_norm(problem.operator, analytic, iterations=200) ** 2
    return Case(problem, truth, y, analytic, x0, norm2)


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    return (x.abs() if x.is_complex() else x).float()


@torch.no_grad()
def image_metrics(x: torch.Tensor, truth: torch.Tensor, with_ssim: bool = True) -> dict:
    """Per-slice PSNR / SSIM (data range 1; complex images by magnitude) and their means;
    non-finite reconstructions score ``-inf`` dB (never selected)."""
    from spinv.metrics import psnr, ssim

    mag = _magnitude(x)
    if not bool(torch.isfinite(mag).all()):
        return {"psnr_mean": -math.inf, "ssim_mean": None, "psnr": None, "ssim": None}
    p = psnr(mag, truth, data_range=1.0).cpu()
    out = {"psnr_mean": float(p.mean()), "psnr": p.tolist()}
    if with_ssim:
        s = ssim(mag.clamp(-10, 10), truth, data_range=1.0).cpu()
        out.update(ssim_mean=float(s.mean()), ssim=s.tolist())
    return out


@dataclass(frozen=True)
class PnPSettings:
    """One PnP run: ``method`` (``"pgd"``: Algorithm 6 with step :math:`\\tau=c/\\|A\\|^2`,
    ``c`` = ``step_factor`` in (0, 2); ``"admm"``: penalty :math:`\\rho = r\\|A\\|^2`, ``r`` =
    ``rho_factor``, ``cg_iterations`` conjugate-gradient steps in the data step), the weight
    ``weight`` of the relaxed denoiser and ``iterations``."""

    method: str = "pgd"
    weight: float = 1.0
    step_factor: float = 1.0
    rho_factor: float = 0.1
    iterations: int = 100
    cg_iterations: int = 20

    def __post_init__(self) -> None:
        if self.method not in ("pgd", "admm"):
            raise ValueError(f"method={self.method!r}: expected 'pgd' or 'admm'")
        if self.method == "pgd" and not 0 < self.step_factor < 2:
            raise ValueError(f"step_factor={self.step_factor!r}: expected a value in (0, 2)")


def run_pnp_method(case: Case, denoiser: Callable, settings: PnPSettings, track: bool = False,
                   with_ssim: bool = True) -> dict:
    """PnP (``settings``, :class:`PnPSettings`) with the relaxed denoiser
    :math:`(1-\\lambda)\\mathrm{id}+\\lambda\\,` ``denoiser`` from ``case.x0``. Returns the
    metrics of the final iterate (:func:`image_metrics`), the fixed-point residual history
    ``relative_residuals`` (``None`` where not finite), the wall time, the final iterate ``x``
    and, with ``track``, the mean PSNR of every iterate (``psnr_per_iteration``)."""
    s = settings
    phi = RelaxedDenoiser(denoiser, s.weight)
    trace: list[float | None] = []

    def callback(_k: int, u: torch.Tensor) -> None:
        m = image_metrics(u, case.truth, with_ssim=False)["psnr_mean"]
        trace.append(m if math.isfinite(m) else None)

    t0 = time.perf_counter()
    op = case.problem.operator
    if s.method == "pgd":
        r = pnp_proximal_gradient(op, case.y, phi, x0=case.x0, step=s.step_factor / case.op_norm2,
                                  iterations=s.iterations, callback=callback if track else None)
    else:
        r = pnp_admm(op, case.y, phi, rho=s.rho_factor * case.op_norm2, x0=case.x0,
                     iterations=s.iterations, cg_iterations=s.cg_iterations,
                     callback=callback if track else None)
    out: dict[str, Any] = image_metrics(r.x, case.truth, with_ssim=with_ssim)
    out["seconds"] = time.perf_counter() - t0
    out["relative_residuals"] = [v if math.isfinite(v) else None for v in r.relative_residuals]
    out["final_relative_residual"] = out["relative_residuals"][-1]
    if track:
        out["psnr_per_iteration"] = trace
    out["x"] = r.x
    return out


def grid_search(score: Callable[[dict], float], grid: Sequence[dict],
                log: Callable[[dict, float], None] | None = None) -> tuple[dict, list[dict]]:
    """Evaluate ``score(params)`` on every point of ``grid``; returns the best point (ties:
    the first) and the table ``[{**params, "score": value}, ...]`` (non-finite: ``None``)."""
    if not grid:
        raise ValueError("grid: expected at least one parameter point")
    table, best, best_value = [], None, -math.inf
    for params in grid:
        value = float(score(dict(params)))
        table.append({**params, "score": value if math.isfinite(value) else None})
        if log is not None:
            log(params, value)
        if best is None or value > best_value:
            best, best_value = dict(params), value
    return best, table


def run_tv(case: Case, alpha: float, iterations: int = 300, with_ssim: bool = True,
           keep_x: bool = False) -> dict:
    """TV reconstruction :math:`\\arg\\min_u\\tfrac12\\|Au-y\\|^2+\\alpha TV(u)` (PDHG,
    :func:`~spinv.variational.reconstruct.reconstruct_variational`) and its metrics."""
    from spinv.variational.reconstruct import VariationalOptions, reconstruct_variational

    t0 = time.perf_counter()
    options = VariationalOptions(iterations=iterations, tol=0.0,
                                 op_norm=None if case.y.is_complex() else case.op_norm2 ** 0.5)
    x = reconstruct_variational(case.problem.operator, case.y, "tv", alpha, options)
    out = image_metrics(x, case.truth, with_ssim=with_ssim)
    out["seconds"] = time.perf_counter() - t0
    if keep_x:
        out["x"] = x
    return out
