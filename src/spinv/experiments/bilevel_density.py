"""Kernel-density estimates of learned sampling patterns (thesis Figs. 1.6 and 1.8).

The density of a pattern is its convolution with a narrow Gaussian, normalised to sum to 1
(Sec. 1.3.2). Patterns come from files (``patterns: {label: path.npy}``) and/or are learned
from ``base`` (``learn: {label: {regulariser: tv, beta: 0.03}}``, or the short form
``{tv: 0.03}`` with the regulariser as label); with neither, a TV and a wavelet pattern are
learned. ``figures: {name: [label, ...]}`` groups them into one figure each (default: one
figure ``densities`` with all): the densities and their slices along the diagonal through the
centre. The summary lists, per pattern, the peak of the density and the mass within a radius
of 1/8 of the image size around the centre (how strongly peaked it is).

``python -m spinv.experiments.bilevel_density configs/sampling-density.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinv.atomic import atomic_save_figure
from spinv.experiments.bilevel_common import cli, load_experiment, run_point

DEFAULTS = {"patterns": {}, "bandwidth": 1.5, "learn": {}, "figures": {}}
_FALLBACK = {"tv": {"regulariser": "tv", "beta": 1e-2},
             "wavelet": {"regulariser": "wavelet", "beta": 1e-2}}


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


def _learn_specs(learn: dict) -> dict:
    specs = {}
    for label, spec in learn.items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"regulariser": label, "beta": spec}
        if not isinstance(spec, dict) or set(spec) - {"regulariser", "beta"} or "beta" not in spec:
            raise ValueError(f"learn[{label!r}]={spec!r}: expected a beta or a mapping with "
                             "'beta' and optionally 'regulariser'")
        specs[str(label)] = {"regulariser": spec.get("regulariser", "tv"),
                             "beta": float(spec["beta"])}
    return specs


def _figure(path: Path, pats: dict, dens: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def run(config: Path, out: Path, log=print) -> dict:
    base, exp = load_experiment(config, DEFAULTS)
    pats = {str(k): np.load(v) for k, v in (exp["patterns"] or {}).items()}
    learn = _learn_specs(exp["learn"] or ({} if pats else _FALLBACK))
    figures = {str(k): list(v) for k, v in (exp["figures"] or {}).items()}
    labels = set(pats) | set(learn)
    for name, members in figures.items():
        if not members or set(members) - labels:
            raise ValueError(f"figures[{name!r}]={members!r}: expected labels drawn from "
                             f"{sorted(labels)}")
    rows = []
    for label, spec in learn.items():
        m = run_point(base, out, label, log, **spec)
        pats[label] = np.load(out / label / "pattern.npy")
        rows.append({"pattern": label, **spec, "alpha": m["alpha"], "psnr": m["psnr"],
                     "ssim": m["ssim"]})
    dens = {k: kernel_density(p, exp["bandwidth"]) for k, p in pats.items()}
    info = {r["pattern"]: r for r in rows}
    rows = [{**info.get(k, {"pattern": k}), "sampling_rate": float((p > 0).mean()),
             "peak": float(dens[k].max()), "central_mass": _central_mass(dens[k])}
            for k, p in pats.items()]
    for name, members in (figures or {"densities": list(pats)}).items():
        _figure(out / f"{name}.png", {k: pats[k] for k in members}, dens)
    return {"experiment": "density", "rows": rows, "figures": figures or {"densities": list(pats)},
            "bandwidth": exp["bandwidth"], "base": base.to_dict()}


def main(argv=None) -> int:
    return cli(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
