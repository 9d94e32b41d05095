"""Training-set size sweep: held-out SSIM of the learned pattern vs N (thesis Sec. 1.3.5,
Fig. 1.11).

``python -m spinv.experiments.bilevel_training_size configs/sampling-training-size.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_save_figure
from spinv.experiments.bilevel_common import cli, load_experiment, run_point

DEFAULTS = {"n_train": [1, 3, 5, 7]}


def run(config: Path, out: Path, log=print) -> dict:
    base, exp = load_experiment(config, DEFAULTS)
    rows = []
    for n in exp["n_train"]:
        m = run_point(base, out, f"n_{int(n)}", log, n_train=int(n))
        r = m["results"]["learned"]
        rows.append({"n_train": int(n), "sampling_rate": m["sampling_rate"], "alpha": m["alpha"],
                     "ssim": r["ssim"], "ssim_std": r["ssim_std"], "psnr": r["psnr"],
                     "psnr_std": r["psnr_std"]})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.2))
    ax.errorbar([r["n_train"] for r in rows], [r["ssim"] for r in rows],
                yerr=[r["ssim_std"] for r in rows], marker="o")
    ax.set_xlabel("training set size")
    ax.set_ylabel("held-out SSIM")
    atomic_save_figure(fig, out / "training_size.png")
    plt.close(fig)
    return {"experiment": "training_size", "rows": rows, "base": base.to_dict()}


def main(argv=None) -> int:
    return cli(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
