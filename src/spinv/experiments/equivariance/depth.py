"""Learned iterations applied past their trained depth vs TV-PDHG (thesis §2.6, Fig. 2.12).

The thesis repeatedly applies the learned proximal gradient method (Algorithm 5), not only for
the :math:`it` iterations it was trained with, and records the iterates
:math:`\\hat u^k_{\\text{learned iterative}}`; with blocks :math:`\\widehat{\\mathrm{prox}}_i`,
:math:`i = 0, \\dots, it-1`, iteration :math:`k \\ge 1` is

.. math:: (u_k, s_k) = \\widehat{\\mathrm{prox}}_{j(k)}\\big(u_{k-1}, s_{k-1},
          \\tau\\nabla E_y(u_{k-1})\\big), \\qquad
          j(k) = (k-1) \\bmod it \\;\\; (\\texttt{reuse="cycle"}),

i.e. applying the whole method again from its own output and memory state (the cause of the
periodic spikes at :math:`k \\equiv 0 \\bmod it` of Fig. 2.12); ``reuse="last"`` instead keeps
applying the last block, :math:`j(k) = \\min(k, it) - 1`. For :math:`k \\le it` both equal the
trained method, so :math:`u_{it} = \\Phi(y)`.

The comparison is TV regularisation (Eq. (1.3) with TV) solved by PDHG (Algorithm 1,
:func:`spinv.variational.reconstruct.tv_pdhg_iterates`), with :math:`\\alpha` tuned for the
mean PSNR on training slices (:func:`spinv.variational.reconstruct.tune_alpha`).

>>> import torch
>>> from spinv.operators import Identity
>>> from spinv.learned import LearnedProximalGradient
>>> model = LearnedProximalGradient(Identity(), width=4, iterations=3, seed=0)
>>> y = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
>>> us = list(lpg_iterates(model, y, 7))
>>> len(us), bool(torch.allclose(us[2], model(y), atol=1e-6))
(7, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.experiments.equivariance.baselines import tune_tv_alpha
from spinv.experiments.equivariance.config import EquivarianceConfig
from spinv.experiments.equivariance.report import write_payload
from spinv.experiments.equivariance.sweeps import (
    capped_sizes,
    load_run_data,
    n_test_for,
    settings_payload,
    setup_run,
    train_and_time,
)
from spinv.experiments.protocol import Progress

__all__ = ["lpg_iterates", "run_depth"]


@torch.no_grad()
def lpg_iterates(
    model, y: torch.Tensor, total: int, reuse: str = "cycle"
) -> Iterator[torch.Tensor]:
    """Yield the iterates :math:`u_1, \\dots, u_{total}` of ``model`` (a
    :class:`~spinv.learned.LearnedProximalGradient`) run past its depth (module docstring)."""
    yield from model.iterates(y, total, reuse)


def _roi_psnr(u: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> list[float]:
    from spinv.metrics import psnr

    u = u.abs() if u.is_complex() else u
    return psnr(u.float().cpu(), x.cpu(), mask=mask.cpu(), data_range=1.0).tolist()


def _learned_curve(cfg: EquivarianceConfig, model, shown: tuple, device: torch.device
                   ) -> dict[str, Any]:
    """ROI PSNR of every iterate of ``model`` past its depth on the ``shown`` slices
    ``(x, y, mask)``."""
    x, y, mask = shown
    model.eval()
    per_iter = []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        for u in lpg_iterates(model, y, cfg.total_iterations, cfg.reuse):
            per_iter.append(_roi_psnr(u.float() if not u.is_complex() else u, x, mask))
    mean = [float(np.mean(v)) for v in per_iter]
    return {
        "psnr_roi": per_iter,
        "mean_psnr_roi": mean,
        "at_depth": (mean[cfg.iterations - 1] if cfg.total_iterations >= cfg.iterations
                     else None),
        "best_iteration": int(np.argmax(mean)) + 1,
        "final": mean[-1],
    }


def _pdhg_curve(cfg: EquivarianceConfig, data, shown: tuple) -> tuple[float, dict, dict]:
    """TV's tuned :math:`\\alpha`, its search history and the ROI PSNR of the TV-PDHG
    iterates on the ``shown`` slices."""
    from spinv.variational.reconstruct import tv_pdhg_iterates

    x, y, mask = shown
    alpha, history = tune_tv_alpha(cfg.tv_tuning(), data, nonnegative=False)  # as the iterates
    k_pdhg = cfg.pdhg_iterations or cfg.total_iterations
    pdhg = [_roi_psnr(u, x, mask) for u in
            tv_pdhg_iterates(data.operator, y, alpha, iterations=k_pdhg)]
    pdhg_mean = [float(np.mean(v)) for v in pdhg]
    return alpha, history, {"psnr_roi": pdhg, "mean_psnr_roi": pdhg_mean, "final": pdhg_mean[-1]}


def run_depth(cfg: EquivarianceConfig, out: Path, progress: Progress | None = None,
              resume: bool = False) -> dict[str, Any]:
    """Train the model(s) of ``groups`` on ``n_train`` slices, run them for
    ``total_iterations`` iterations on ``n_show`` test slices, and compare the ROI PSNR of
    every iterate with the TV-PDHG iterates; each model's run goes to
    ``out/models/depth-<name>`` (``resume``: continue them). Returns ``{"experiment",
    "settings", "notes", "alpha", "results": {"learned": {model: {"psnr_roi": [[...] per
    iterate]}}, "pdhg": ...}}``.
    """
    device = setup_run(cfg)
    notes: list[str] = []
    (n,) = capped_sizes(cfg, [cfg.n_train], notes)
    n_test = n_test_for(cfg, notes)
    data = load_run_data(cfg, n, n_test, device)
    n_show = min(cfg.n_show, n_test)
    shown = (data.x_test[:n_show], data.y_test[:n_show], data.mask_test[:n_show])
    learned: dict[str, dict] = {}
    for group in cfg.groups:
        name = group or "ordinary"
        model, losses, secs = train_and_time(cfg, data, group, f"depth-{name}", progress,
                                             Path(out), resume)
        curve = _learned_curve(cfg, model, shown, device)
        learned[name] = {"train_time_s": secs,
                         "loss_last_10": sum(losses[-10:]) / len(losses[-10:]), **curve}
    alpha, history, pdhg = _pdhg_curve(cfg, data, shown)
    keys = ("groups", "n_train", "total_iterations", "reuse", "pdhg_iterations", "alpha_grid",
            "tune_images", "tune_iterations", "n_show")
    payload = {
        "experiment": "depth", "settings": settings_payload(cfg, "depth", keys),
        "n_train_used": n, "notes": notes, "alpha": alpha, "alpha_search": history,
        "results": {"learned": learned, "pdhg": pdhg},
    }
    write_depth_outputs(payload, Path(out))
    return payload


def format_depth_markdown(payload: dict[str, Any]) -> str:
    s, r = payload["settings"], payload["results"]
    lines = [
        f"# equivariance depth ({s['problem']}, {s['dataset']}, scale {s['scale']})",
        "",
        f"Trained depth {s['iterations']}, applied for {s['total_iterations']} iterations "
        f"(reuse: {s['reuse']}); TV-PDHG with alpha = {payload['alpha']:.3g} (tuned on "
        f"{s['tune_images']} training slices). Mean ROI PSNR over {s['n_show']} test slices.",
        "",
        "| method | PSNR at trained depth | best (iteration) | final |",
        "|---|---|---|---|",
    ]
    for name, e in r["learned"].items():
        at = "n/a" if e["at_depth"] is None else f"{e['at_depth']:.2f}"
        lines.append(f"| learned {name} | {at} | {max(e['mean_psnr_roi']):.2f} "
                     f"({e['best_iteration']}) | {e['final']:.2f} |")
    p = r["pdhg"]["mean_psnr_roi"]
    lines.append(f"| TV-PDHG | - | {max(p):.2f} ({int(np.argmax(p)) + 1}) | {p[-1]:.2f} |")
    return "\n".join(lines) + "\n"


def write_depth_outputs(payload: dict[str, Any], out: Path) -> list[Path]:
    """``results.json``, ``results.md`` and ``psnr_vs_iteration.png``."""
    from spinv.plotting import pyplot, save_figure

    written = write_payload(out, payload, format_depth_markdown(payload))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for name, e in payload["results"]["learned"].items():
        k = np.arange(1, len(e["mean_psnr_roi"]) + 1)
        ax.plot(k, e["mean_psnr_roi"], marker=".", label=f"learned ({name})")
    p = payload["results"]["pdhg"]["mean_psnr_roi"]
    ax.plot(np.arange(1, len(p) + 1), p, label="TV-PDHG")
    depth = payload["settings"]["iterations"]
    ax.axvline(depth, color="gray", ls=":", lw=1, label=f"trained depth {depth}")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("PSNR in ROI (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return [*written, save_figure(fig, out / "psnr_vs_iteration.png")]
