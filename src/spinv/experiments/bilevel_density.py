"""Kernel-density estimates of learned sampling patterns (thesis Figs. 1.6 and 1.8).

The density of a pattern is its convolution with a narrow Gaussian, normalised to sum to 1
(Sec. 1.3.2). Given pattern files (``patterns: {label: path.npy}``) or, if none, learning a TV
and a wavelet pattern from ``base``, the figure shows the densities and their slices along the
diagonal through the centre; the summary lists the density's peak and the mass within a
radius of 1/8 of the image size around the centre (how strongly peaked it is).

``python -m spinv.experiments.bilevel_density configs/sampling-density.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinv.atomic import atomic_save_figure
from spinv.experiments.bilevel_common import cli, load_experiment, run_point

DEFAULTS = {"patterns": {}, "bandwidth": 1.5, "learn": {"tv": 1e-2, "wavelet": 1e-2}}


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


def run(config: Path, out: Path, log=print) -> dict:
    base, exp = load_experiment(config, DEFAULTS)
    pats = {k: np.load(v) for k, v in (exp["patterns"] or {}).items()}
    if not pats:
        for reg, beta in exp["learn"].items():
            run_point(base, out, reg, log, regulariser=reg, beta=float(beta))
            pats[reg] = np.load(out / reg / "pattern.npy")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(pats)
    fig, ax = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3))
    rows = []
    for i, (label, p) in enumerate(pats.items()):
        d = kernel_density(p, exp["bandwidth"])
        ax[i].imshow(d, cmap="magma")
        ax[i].set_title(f"{label} ({100 * float((p > 0).mean()):.1f}%)", fontsize=9)
        ax[i].axis("off")
        diag = np.array([d[k, k] for k in range(min(d.shape))])
        ax[n].plot(diag, label=label)
        rows.append({"pattern": label, "sampling_rate": float((p > 0).mean()),
                     "peak": float(d.max()), "central_mass": _central_mass(d)})
    ax[n].set_title("diagonal slice", fontsize=9)
    ax[n].legend(fontsize=8)
    atomic_save_figure(fig, out / "densities.png")
    plt.close(fig)
    return {"experiment": "density", "rows": rows, "base": base.to_dict()}


def main(argv=None) -> int:
    return cli(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
