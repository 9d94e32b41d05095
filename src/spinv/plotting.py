"""Figures shared by reports and experiments: image panels, example grids, violin plots.

A leaf module: it imports nothing from :mod:`spinv.training` or the experiments, so every layer
may draw with it. Figures follow the thesis' presentation: example reconstructions with their
SSIM (top) and PSNR (bottom) printed on them (Figure 2.9), violin plots of per-image metrics
with the top and bottom 5 % of values omitted (Figures 2.7-2.8). :func:`save_figure` writes a
PNG atomically (:func:`spinv.atomic.atomic_save_figure`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spinv.atomic import atomic_save_figure as save_figure

__all__ = ["example_figure", "image_panel", "pyplot", "save_figure", "trimmed", "violin_figure"]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def image_panel(ax, image, label: str | None = None, fontsize: float = 8, pad: float = 1.5) -> None:
    """Show ``image`` (values clipped to [0, 1], grey, no ticks) on ``ax``, with ``label`` (e.g.
    SSIM and PSNR) printed in yellow in its top-left corner."""
    ax.imshow(np.clip(np.asarray(image, dtype=float), 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    if label is not None:
        ax.text(0.02, 0.98, label, transform=ax.transAxes, va="top", ha="left",
                fontsize=fontsize, color="yellow",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": pad, "lw": 0})


def example_figure(ex: dict, title: str = "") -> Any:
    """Grid of examples: rows = images, columns = ground truth, baseline, reconstruction; the
    SSIM (top) and PSNR (bottom) of each reconstruction are printed on it, as in Figure 2.9."""
    plt = pyplot()
    k = ex["truth"].shape[0]
    cols = [("ground truth", "truth", None, None)]
    if "baseline" in ex:
        cols.append(("baseline", "baseline", "baseline_psnr", "baseline_ssim"))
    cols.append(("learned", "recon", "psnr", "ssim"))
    fig, axes = plt.subplots(k, len(cols), figsize=(2.4 * len(cols), 2.4 * k), squeeze=False)
    for i in range(k):
        for j, (name, key, pk, sk) in enumerate(cols):
            label = None if pk is None else f"{float(ex[sk][i]):.3f}\n{float(ex[pk][i]):.2f} dB"
            image_panel(axes[i, j], ex[key][i], label)
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def trimmed(values: list[float], frac: float = 0.05) -> np.ndarray:
    """Finite ``values`` sorted, without the top and bottom ``frac`` when there are >= 20."""
    v = np.sort(np.asarray([x for x in values if x is not None and np.isfinite(x)], float))
    if v.size >= 20:
        cut = int(np.floor(frac * v.size))
        v = v[cut : v.size - cut]
    return v


def violin_figure(groups: dict[str, list[float]], ylabel: str) -> Any:
    """Violin plot of per-image values per label (top/bottom 5 % trimmed, Figure 2.7)."""
    plt = pyplot()
    labels = list(groups)
    data = [trimmed(groups[k]) for k in labels]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels) + 1.5), 3.4))
    pos = [i + 1 for i, d in enumerate(data) if d.size > 1]
    if pos:
        ax.violinplot([data[p - 1] for p in pos], positions=pos, showmeans=True,
                      showextrema=True)
    for i, d in enumerate(data):
        ax.scatter(np.full(d.size, i + 1.0), d, s=6, color="black", alpha=0.5, zorder=3)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig
