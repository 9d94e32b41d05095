"""Training-set size sweep: held-out SSIM of the learned pattern vs N (thesis Sec. 1.3.5,
Fig. 1.11).

At a fixed beta the learned rate varies with N, so each ``base.baselines`` pattern is built at
each point's learned rate (alpha tuned on the same N training slices) and drawn dashed in the
figure: the gap to it is comparable across N, the raw SSIM is not.

``spinv experiment run sampling training-size configs/sampling-training-size.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_save_figure
from spinv.experiments.protocol import Progress
from spinv.experiments.sampling.common import Points, write_summary
from spinv.experiments.sampling.config import TrainingSizeConfig

__all__ = ["run"]


def _row(n: int, m: dict, baselines: list[str]) -> dict:
    r = m["results"]["learned"]
    return {"n_train": n, "sampling_rate": m["sampling_rate"], "alpha": m["alpha"],
            "ssim": r["ssim"], "ssim_std": r["ssim_std"], "psnr": r["psnr"],
            "psnr_std": r["psnr_std"],
            "train_ssim": m["results"]["learned_train"]["ssim"],
            "train_psnr": m["results"]["learned_train"]["psnr"],
            "effective_solves": m["training"]["effective_lower_level_solves"],
            "lbfgsb_iterations": m["training"]["lbfgsb_iterations"],
            "seconds": m["seconds"],
            "baselines": {b: {k: m["results"][b][k] for k in
                              ("ssim", "ssim_std", "psnr", "psnr_std", "sampling_rate")}
                          for b in baselines}}


def run(cfg: TrainingSizeConfig, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """One learning run per training-set size; ``out/training_size.png`` and
    ``summary.json``."""
    points = Points(cfg.base, out, len(cfg.n_train), progress, "training-set sizes")
    rows = [_row(int(n), points.run(f"n_{int(n)}", n_train=int(n)), cfg.base.baselines)
            for n in cfg.n_train]
    _figure(rows, cfg.base.baselines, Path(out) / "training_size.png")
    return write_summary(out, {"experiment": "training_size", "rows": rows,
                               "base": cfg.base.to_dict()})


def _figure(rows: list[dict], baselines: list[str], path: Path) -> None:
    from spinv.plotting import pyplot

    plt = pyplot()
    ns = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(7.5, 3.2))
    for a, key, name in ((ax[0], "ssim", "SSIM"), (ax[1], "psnr", "PSNR (dB)")):
        a.errorbar(ns, [r[key] for r in rows], yerr=[r[f"{key}_std"] for r in rows],
                   marker="o", capsize=3, label="learned")
        for b in baselines:
            a.plot(ns, [r["baselines"][b][key] for r in rows], "--s", ms=4,
                   label=f"{b.replace('_', ' ')} (same rate)")
        if baselines:
            a.legend(fontsize=7)
        a.set_xlabel("training set size")
        a.set_ylabel(f"held-out {name}")
        a.set_xticks(ns)
    for r in rows:
        ax[0].annotate(f"{100 * r['sampling_rate']:.0f}%", (r["n_train"], r["ssim"]),
                       textcoords="offset points", xytext=(4, -12), fontsize=7)
    ax[0].set_title("labels: sampled fraction", fontsize=8)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
