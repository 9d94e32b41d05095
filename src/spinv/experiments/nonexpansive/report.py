"""Figures and markdown of the chapter-3 experiments (``spinv nonexpansive ...``), all
written atomically (temporary file, then ``os.replace``).

- :func:`plot_toy`: the fitted curves of Fig. 3.1;
- :func:`plot_psnr`: per-image test PSNRs per denoiser (violins, means marked) as Fig. 3.2;
- :func:`plot_pnp_curves`: fixed-point residual, PSNR and SSIM per PnP iterate;
- :func:`plot_images`: a row of images (ground truth, analytic, PnP reconstructions);
- :func:`toy_markdown`, :func:`denoise_markdown`: the ``results.md`` of ``toy`` and ``denoise``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["denoise_markdown", "markdown_table", "plot_images", "plot_pnp_curves", "plot_psnr",
           "plot_toy", "results_text", "save_figure", "toy_markdown"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save ``fig`` to ``path`` through a temporary file and a rename; closes the figure."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".png",
                               dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def plot_toy(r: dict, path: str | os.PathLike) -> Path:
    """Fig. 3.1: |x|, the training points and both fitted networks on the grid."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    g = np.asarray(r["grid"])
    ax.plot(g, np.abs(g), "k:", label="|x|")
    ax.plot(g, r["nonexpansive"],
            label=f"nonexpansive ResNet (max slope {r['nonexpansive_max_slope']:.2f})")
    ax.plot(g, r["unconstrained"],
            label=f"unconstrained ResNet (max slope {r['unconstrained_max_slope']:.2f})")
    ax.plot(r["train_x"], r["train_y"], "ko", label="training points")
    ax.set_xlabel("x")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_psnr(models: dict[str, dict], noisy: dict, path: str | os.PathLike,
              title: str = "Test PSNR per denoiser") -> Path:
    """Violins of the per-image test PSNRs of each method (a single image: a dot), the mean
    as a black bar, the noisy input's mean as a dashed line."""
    plt = _plt()
    names = list(models)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(names) + 2), 4))
    data = [np.asarray(models[n]["psnr"], dtype=float) for n in names]
    pos = np.arange(1, len(names) + 1)
    many = [i for i, d in enumerate(data) if len(d) > 1 and np.ptp(d) > 0]
    if many:
        ax.violinplot([data[i] for i in many], positions=pos[many], showextrema=False)
    for p, d in zip(pos, data, strict=True):
        ax.plot(np.full(len(d), p), d, ".", color="tab:blue", alpha=0.6)
        ax.plot([p - 0.3, p + 0.3], [d.mean()] * 2, "k-", lw=2)
    ax.axhline(noisy["psnr_mean"], color="gray", ls="--", lw=1, label="noisy input")
    ax.set_xticks(pos)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pnp_curves(runs: dict[str, dict], path: str | os.PathLike, title: str = "") -> Path:
    """Panels per iterate: relative fixed-point residual (log), PSNR and, when every run has
    it, SSIM."""
    plt = _plt()
    with_ssim = all("ssim" in r for r in runs.values())
    fig, axes = plt.subplots(1, 3 if with_ssim else 2, figsize=(13 if with_ssim else 9, 3.8))
    for name, r in runs.items():
        res = [np.nan if v is None else max(v, 1e-16) for v in r["relative_residuals"]]
        k = np.arange(1, len(res) + 1)
        axes[0].semilogy(k, res, label=name)
        axes[1].plot(k, [np.nan if v is None else v for v in r["psnr"]], label=name)
        if with_ssim:
            axes[2].plot(k, [np.nan if v is None else v for v in r["ssim"]], label=name)
    axes[0].set_ylabel(r"$\|u_{k+1}-u_k\|/\|u_0\|$")
    axes[1].set_ylabel("PSNR (dB)")
    if with_ssim:
        axes[2].set_ylabel("SSIM")
    for ax in axes:
        ax.set_xlabel("iteration k")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_images(images: dict[str, np.ndarray], path: str | os.PathLike,
                captions: dict[str, str] | None = None) -> Path:
    """A row of grey images in [0, 1] with titles (and optional captions below)."""
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.0), squeeze=False)
    for ax, (name, img) in zip(axes[0], images.items(), strict=True):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
        if captions and name in captions:
            ax.set_xlabel(captions[name], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; floats with 2 decimals, ``None`` as an en dash.

    >>> print(markdown_table(["a", "b"], [["x", 1.234], ["y", None]]))
    | a | b |
    |---|---|
    | x | 1.23 |
    | y | – |
    """
    def fmt(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def toy_markdown(r: dict, config, path: str | os.PathLike) -> None:
    """``results.md`` of the toy fit (Fig. 3.1) with the settings ``config``
    (:class:`~spinv.experiments.nonexpansive.config.ToyConfig`)."""
    from spinv.atomic import atomic_write_text

    rows = [["nonexpansive Xi (Algorithm 7)", r["train_loss"]["nonexpansive"],
             r["nonexpansive_max_slope"], r["certified_lipschitz"]],
            ["unconstrained ResNet", r["train_loss"]["unconstrained"],
             r["unconstrained_max_slope"], None]]
    md = ["# Toy |x| fit (thesis Fig. 3.1)", "",
          f"{config.n_points} random points in [-1, 1], {config.steps} Adam steps each, "
          f"seed {config.seed}. Max slope measured on a grid of 801 points in [-2, 2] "
          "(a lower bound of the Lipschitz constant).", "",
          markdown_table(["network", "train MSE", "max slope", "certified Lipschitz"],
                         [[n, f"{a:.2e}", b, c] for n, a, b, c in rows]), "",
          "![fit](toy_fit.png)", ""]
    atomic_write_text(path, "\n".join(md))


def denoise_markdown(out: Path, r: dict, sigma: float, done: bool) -> None:
    """``results.md`` (Table 3.1-style) and ``psnr.png`` (Fig. 3.2-style) in ``out`` of the
    methods of the denoising result ``r`` finished so far."""
    from spinv.atomic import atomic_write_text

    if r["models"]:
        plot_psnr(r["models"], r["noisy"], out / "psnr.png",
                  title=f"natural test crops, sigma = {sigma}")
    rows = [["noisy input", r["noisy"]["psnr_mean"], r["noisy"]["psnr_std"], None, None, None]]
    for name, m in r["models"].items():
        rows.append([name, m["psnr_mean"], m["psnr_std"], m.get("certified_lipschitz"),
                     m.get("steps"), m.get("train_seconds", m.get("eval_seconds"))])
    c = r["config"]
    md = ["# Denoising natural images (thesis Fig. 3.2, Table 3.1)", "",
          f"sigma = {c['sigma']}, {c['n_train']} training images (random {c['crop']}x"
          f"{c['crop']} crops, batch {c['batch_size']}, fresh noise each step), {c['n_test']} "
          f"test images ({c['test_size'] or 'full'} px centre crops); width {c['width']}, "
          f"depth {c['depth']}, {c['steps']} Adam steps (lr {c['lr']}, {c['lr_schedule']}), "
          f"seed {c['seed']}, device {c['device']}, {r['machine']['torch_threads']} torch "
          "thread(s). R: residual id - gamma Gamma (Eq. 3.6); NR: gamma Gamma (Eq. 3.5). "
          "'certified Lip' is a provable bound (DnCNN: loose product of layer norms); "
          "'seconds': training (TV: evaluation) wall time on this machine.", "",
          markdown_table(["method", "PSNR mean (dB)", "std", "certified Lip", "steps",
                          "seconds"], rows), "",
          "" if done else "*(run in progress: methods still missing)*", "",
          "![psnr](psnr.png)" if r["models"] else "", ""]
    atomic_write_text(out / "results.md", "\n".join(md))


def results_text(results: dict, out: str | os.PathLike) -> str:
    """The report shown after a run: the ``results.md`` the experiment wrote to ``out``."""
    return (Path(out) / "results.md").read_text()
