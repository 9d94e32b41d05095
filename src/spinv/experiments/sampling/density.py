"""Kernel-density estimates of learned sampling patterns (thesis Figs. 1.6 and 1.8).

The density of a pattern is its convolution with a narrow Gaussian, normalised to sum to 1
(Sec. 1.3.2). Patterns come from files (``patterns: {label: path.npy}``) and/or are learned
from ``base`` (``learn: {label: {regulariser: tv, beta: 0.03}}``, or the short form
``{tv: 0.03}`` with the regulariser as label); with neither, a TV and a wavelet pattern are
learned. ``figures: {name: [label, ...]}`` groups them into one figure each (default: one
figure ``densities`` with all): the densities and their slices along the diagonal through the
centre. The summary lists, per pattern, the peak of the density and the mass within a radius
of 1/8 of the image size around the centre (how strongly peaked it is).

``spinv experiment run sampling density configs/sampling-density.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinv.atomic import atomic_save_figure
from spinv.experiments.protocol import Progress
from spinv.experiments.sampling.common import Points, write_summary
from spinv.experiments.sampling.config import DensityConfig

__all__ = ["kernel_density", "run"]


def kernel_density(pattern: np.ndarray, bandwidth: float = 1.5) -> np.ndarray:
    """Gaussian kernel density estimate (periodic convolution), normalised to sum 1.

    >>> d = kernel_density(np.eye(8), 1.0)
    >>> round(float(d.sum()), 6), d.shape
    (1.0, (8, 8))
    """
    p = np.asarray(pattern, dtype=np.float64)
    h, w = p.shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    gauss = np.exp(-2 * (np.pi * bandwidth) ** 2 * (ky**2 + kx**2))
    d = np.real(np.fft.ifft2(np.fft.fft2(p) * gauss)).clip(min=0)
    return d / d.sum() if d.sum() > 0 else d


def _central_mass(d: np.ndarray) -> float:
    h, w = d.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h // 2, xx - w // 2)
    return float(d[r <= h / 8].sum())


def _figure(path: Path, pats: dict, dens: dict) -> None:
    from spinv.plotting import pyplot

    plt = pyplot()
    n = len(pats)
    fig, ax = plt.subplots(1, n + 1, figsize=(3.0 * (n + 1), 3))
    vmax = max(float(dens[k].max()) for k in pats)  # one colour scale per figure
    for i, label in enumerate(pats):
        d = dens[label]
        ax[i].imshow(d, cmap="magma", vmin=0, vmax=vmax)
        ax[i].set_title(f"{label} ({100 * float((pats[label] > 0).mean()):.1f}%)", fontsize=9)
        ax[i].axis("off")
        diag = np.array([d[k, k] for k in range(min(d.shape))])
        ax[n].plot(np.arange(diag.size) - min(d.shape) // 2, diag, label=label)
    ax[n].set_title("diagonal slice through the centre", fontsize=9)
    ax[n].set_xlabel("k-space offset (pixels)", fontsize=8)
    ax[n].legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def run(cfg: DensityConfig, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """Learn the ``learn`` patterns, estimate every density; one figure per ``figures`` entry
    (default: ``densities.png`` with all) and ``summary.json``."""
    pats = {str(k): np.load(v) for k, v in cfg.patterns.items()}
    learn = cfg.learned()
    points = Points(cfg.base, out, len(learn), progress, "patterns")
    rows = []
    for label, spec in learn.items():
        m = points.run(label, **spec)
        pats[label] = np.load(Path(out) / label / "pattern.npy")
        rows.append({"pattern": label, **spec, "alpha": m["alpha"], "psnr": m["psnr"],
                     "ssim": m["ssim"]})
    dens = {k: kernel_density(p, cfg.bandwidth) for k, p in pats.items()}
    info = {r["pattern"]: r for r in rows}
    rows = [{**info.get(k, {"pattern": k}), "sampling_rate": float((p > 0).mean()),
             "peak": float(dens[k].max()), "central_mass": _central_mass(dens[k])}
            for k, p in pats.items()]
    figures = {str(k): list(v) for k, v in cfg.figures.items()}
    for name, members in (figures or {"densities": list(pats)}).items():
        _figure(Path(out) / f"{name}.png", {k: pats[k] for k in members}, dens)
    return write_summary(out, {"experiment": "density", "rows": rows,
                               "figures": figures or {"densities": list(pats)},
                               "bandwidth": cfg.bandwidth, "base": cfg.base.to_dict()})
