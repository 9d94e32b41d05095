"""Fixed-point residuals of Plug-and-Play proximal gradient (Algorithm 6, thesis ch. 3) with
averaged vs unconstrained denoisers, iterate by iterate.

- :func:`pnp_pgd_with_metrics`: Algorithm 6, :math:`u_{k+1}=\\Phi(u_k-\\tau A^*(Au_k-y))`,
  recording the fixed-point residual :math:`\\|u_{k+1}-u_k\\|` and PSNR / SSIM of every iterate.
  With :math:`\\tau\\le 1/\\|A\\|^2` the gradient step is :math:`\\tfrac12`-averaged; with the
  :math:`\\gamma/2`-averaged residual denoiser :math:`\\mathrm{id}-\\gamma\\Gamma`
  (:class:`~spinv.nn.nonexpansive.NonexpansiveDenoiser`, ``tied=True``, ``alpha=0.5``,
  :math:`\\gamma<2`) the iteration map is averaged (Theorem 3.2.4), so by Krasnosel'skii--Mann
  the residual is nonincreasing and tends to 0 when a fixed point exists; a DnCNN has no such
  guarantee.
- :func:`pnp_convergence_experiment`: that comparison on a natural image crop with untrained
  (seeded) denoisers.

>>> import torch
>>> from spinv.operators import Identity
>>> x = torch.full((1, 1, 8, 8), 0.5)
>>> r = pnp_pgd_with_metrics(Identity(), 2 * x, lambda u: 0.5 * u, truth=x, iterations=3)
>>> r["psnr"][0] == float("inf"), r["residuals"][-1]
(True, 0.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch

from spinv.experiments.protocol import Progress
from spinv.learned.pnp import pnp_proximal_gradient
from spinv.linalg import total_norm
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser

__all__ = ["pnp_convergence_experiment", "pnp_pgd_with_metrics"]


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


@torch.no_grad()
def pnp_pgd_with_metrics(operator, y: torch.Tensor, denoiser: Callable,
                         truth: torch.Tensor, x0: torch.Tensor | None = None,
                         step: float | None = None, iterations: int = 100,
                         progress: Progress | None = None) -> dict[str, Any]:
    """Algorithm 6 (:func:`~spinv.learned.pnp.pnp_proximal_gradient`, all ``iterations`` run)
    with per-iterate metrics against ``truth`` (real, in [0, 1]).

    ``x0`` defaults to :math:`A^*y`, ``step`` to :math:`1/\\|A\\|^2`
    (:meth:`~spinv.operators.base.LinearOperator.norm` on ``x0``'s shape). Complex iterates
    (MRI) are denoised part-wise and measured by their magnitude. Returns lists (one entry per
    iteration ``k = 1..iterations``) ``residuals`` :math:`\\|u_k-u_{k-1}\\|`,
    ``relative_residuals`` (divided by :math:`\\|u_0\\|`), ``psnr``, ``ssim`` and ``objective``
    :math:`\\tfrac12\\|Au_k-y\\|^2` (``None`` where not finite), the final iterate ``x`` and
    the ``step`` used; ``progress(k, iterations, {"psnr": ...})`` after every iteration.
    """
    from spinv.metrics import psnr, ssim

    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected a positive integer")
    u0 = operator.adjoint(y) if x0 is None else x0
    if step is None:
        step = 1.0 / max(operator.norm(tuple(u0.shape)) ** 2, 1e-12)
    out: dict[str, Any] = {k: [] for k in ("residuals", "relative_residuals", "psnr", "ssim",
                                           "objective")}

    def record(_k: int, u: torch.Tensor) -> None:
        mag = (u.abs() if u.is_complex() else u).float()
        finite = bool(torch.isfinite(mag).all())
        out["psnr"].append(float(psnr(mag, truth, data_range=1.0)[0]) if finite else None)
        out["ssim"].append(float(ssim(mag.clamp(-10, 10), truth, data_range=1.0)[0])
                           if finite else None)
        out["objective"].append(_finite(0.5 * total_norm(operator.forward(u) - y) ** 2))
        if progress is not None:
            progress(len(out["psnr"]), iterations, {"psnr": out["psnr"][-1]})

    res = pnp_proximal_gradient(operator, y, denoiser, x0=u0, step=step, iterations=iterations,
                                tol=None, complex_mode="split", callback=record)
    out["residuals"] = [_finite(d) for d in res.residuals]
    out["relative_residuals"] = [_finite(d) for d in res.relative_residuals]
    out["x"] = res.x
    out["step"] = float(step)
    return out


def pnp_convergence_experiment(problem: str = "ct", size: int = 32, iterations: int = 100,
                               denoisers: dict | None = None, seed: int = 0,
                               plot: str | os.PathLike | None = None,
                               out: str | os.PathLike | None = None) -> dict:
    """Fixed-point residual of PnP-PGD (Algorithm 6) with averaged vs unconstrained denoisers.

    ``problem`` ``"ct"`` (:class:`~spinv.operators.ParallelBeamCT`, ``size // 2`` angles) or
    ``"mri"`` (:class:`~spinv.operators.SubsampledFourier`, 30 % random mask), ground truth a
    centre crop of the first natural test image. ``denoisers`` maps names to callables; the
    default compares a certified :math:`\\gamma/2`-averaged residual denoiser (``tied=True``,
    :math:`\\gamma = 1.99`), the untied residual nonexpansive denoiser (Lipschitz
    :math:`1+\\gamma`, not averaged) and a DnCNN, all untrained (seeded) weights.
    """
    from spinv.data import load_dataset
    from spinv.learned.pnp import compare_fixed_point_residuals

    img = torch.from_numpy(load_dataset("natural", "test"))[:1, None]
    h, w = img.shape[-2:]
    x = img[..., (h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2].contiguous()
    gen = torch.Generator().manual_seed(seed)
    if problem == "ct":
        from spinv.operators import ParallelBeamCT

        op = ParallelBeamCT(size, n_angles=max(size // 2, 4))
        y = op(x)
        y = y + 0.01 * y.abs().max() * torch.randn(y.shape, generator=gen)
    elif problem == "mri":
        from spinv.operators import SubsampledFourier

        op = SubsampledFourier((torch.rand(size, size, generator=gen) < 0.3).float())
        y = op(x)
    else:
        raise ValueError(f"problem={problem!r}: expected 'ct' or 'mri'")
    if denoisers is None:
        denoisers = {
            "averaged (tied, gamma=1.99)": NonexpansiveDenoiser.from_config(
                1, width=8, depth=4, tied=True, alpha=0.5, gamma=1.99, seed=seed).eval(),
            "nonexpansive Gamma, residual (untied)": NonexpansiveDenoiser(
                1, width=8, depth=4, gamma=1.99, seed=seed).eval(),
            "DnCNN (unconstrained)": DnCNN(1, width=8, depth=8, zero_last=False,
                                           seed=seed).eval(),
        }
    results = compare_fixed_point_residuals(op, y, denoisers, path=plot, method="pgd",
                                            iterations=iterations)
    summary = {"problem": problem, "size": size, "iterations": iterations, "seed": seed,
               "runs": {}}
    for name, r in results.items():
        d = denoisers[name]
        finite = [v if math.isfinite(v) else None for v in r.relative_residuals]
        summary["runs"][name] = {
            "relative_residuals": finite,  # None where the iteration overflowed (inf / nan)
            "final_relative_residual": finite[-1],
            "certified_averagedness": getattr(d, "certified_averagedness", lambda: None)(),
        }
    if out is not None:
        from spinv.experiments.nonexpansive.denoising import write_json

        write_json(out, summary)
    return summary


