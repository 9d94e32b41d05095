"""Varying the sparsity parameter beta: sampling rate vs held-out SSIM (thesis Sec. 1.3.2,
Figs. 1.4-1.5). One free-pattern learning per beta; the plot shows SSIM and the learned alpha
against the sampling rate.

``spinv experiment run sampling beta-sweep configs/sampling-beta-sweep.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_save_figure
from spinv.experiments.protocol import Progress
from spinv.experiments.sampling.common import Points, write_summary
from spinv.experiments.sampling.config import BetaSweepConfig

__all__ = ["run"]


def run(cfg: BetaSweepConfig, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """Learn a free pattern per ``cfg.betas``; ``out/beta_sweep.png`` and ``summary.json``."""
    points = Points(cfg.base, out, len(cfg.betas), progress, "beta sweep")
    rows = []
    for beta in cfg.betas:
        m = points.run(f"beta_{beta:.3g}", beta=float(beta), parametrisation="free")
        r = m["results"]["learned"]
        rows.append({"beta": float(beta), "sampling_rate": m["sampling_rate"],
                     "alpha": m["alpha"], "ssim": r["ssim"], "ssim_std": r["ssim_std"],
                     "psnr": r["psnr"], "psnr_std": r["psnr_std"],
                     "effective_solves": m["training"]["effective_lower_level_solves"]})
    rows.sort(key=lambda r: r["sampling_rate"])
    _figure(rows, Path(out) / "beta_sweep.png")
    return write_summary(out, {"experiment": "beta_sweep", "rows": rows,
                               "base": cfg.base.to_dict()})


def _figure(rows: list[dict], path: Path) -> None:
    from spinv.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.2))
    ax[0].errorbar([r["sampling_rate"] for r in rows], [r["ssim"] for r in rows],
                   yerr=[r["ssim_std"] for r in rows], marker="o")
    ax[0].set_xlabel("sampling rate")
    ax[0].set_ylabel("held-out SSIM")
    ax[1].plot([r["sampling_rate"] for r in rows], [r["alpha"] for r in rows], marker="o")
    ax[1].set_xlabel("sampling rate")
    ax[1].set_ylabel("learned alpha")
    atomic_save_figure(fig, path)
    plt.close(fig)
