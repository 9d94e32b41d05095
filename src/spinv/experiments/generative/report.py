"""Figures and tables of the generative experiment (:mod:`spinv.experiments.generative`):
learned covariance structure, PSNR vs sampling rate, example reconstructions and the Markdown
tables of ``results.md``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from spinv.atomic import atomic_save_figure

__all__ = ["markdown_report", "metrics", "plot_covariances", "plot_examples", "results_text",
           "plot_generalisation", "setting_key"]


@torch.no_grad()
def plot_covariances(models: dict, x: torch.Tensor, path: Path, pixels=None) -> None:
    """Per covariance model at :math:`z` = encoder mean of ``x`` (one image): :math:`G(z)`, the
    pixel standard deviations, correlation rows
    :math:`\\Sigma_{p\\cdot}/\\sqrt{\\Sigma_{pp}\\Sigma_{qq}}`
    for a few pixels :math:`p` (red positive, blue negative) and the top eigen-images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in models if k != "identity"]
    S = x.shape[-1]
    pixels = pixels or [(S // 2, S // 2), (S // 4, S // 3), (3 * S // 4, 2 * S // 3)]
    ncol = 2 + len(pixels) + 4
    fig, axes = plt.subplots(len(kinds), ncol, figsize=(1.7 * ncol, 1.8 * len(kinds)),
                             squeeze=False)
    for r, kind in enumerate(kinds):
        m = models[kind]
        z = m.encode(x.to(m.log_gamma))[0]
        mean = m.decode_mean(z)[0, 0].cpu()
        Sig = m.covariance(z).dense()[0].double().cpu()
        std = Sig.diagonal().sqrt()
        corr = Sig / (std[:, None] * std[None, :])
        row = axes[r]
        row[0].imshow(mean, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(f"{kind}: G(z)", fontsize=7)
        row[1].imshow(std.reshape(S, S), cmap="magma")
        row[1].set_title("std", fontsize=7)
        for j, (pi, pj) in enumerate(pixels):
            c = corr[pi * S + pj].reshape(S, S).clone()
            c[pi, pj] = 0  # hide the unit diagonal so the neighbours are visible
            v = float(c.abs().max()) or 1.0
            row[2 + j].imshow(c, cmap="seismic", vmin=-v, vmax=v)
            row[2 + j].plot([pj], [pi], "k+", ms=4)
            row[2 + j].set_title(f"corr row ({pi},{pj})", fontsize=7)
        evals, evecs = torch.linalg.eigh(Sig)
        for j in range(4):
            e = evecs[:, -1 - j].reshape(S, S)
            v = float(e.abs().max())
            row[2 + len(pixels) + j].imshow(e, cmap="seismic", vmin=-v, vmax=v)
            row[2 + len(pixels) + j].set_title(f"eig {j + 1} ({float(evals[-1 - j]):.1e})",
                                               fontsize=7)
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def plot_generalisation(table: dict, cfg: dict, path: Path) -> None:
    """Mean test PSNR vs sampling rate, one panel per noise level (the training setting
    marked by a red line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [float(r) for r in cfg["problem"]["rates"]]
    noises = [float(s) for s in cfg["problem"]["noise"]]
    ts = cfg["problem"]["train_setting"]
    fig, axes = plt.subplots(1, len(noises), figsize=(4.2 * len(noises), 3.4), squeeze=False)
    for ax, s in zip(axes[0], noises, strict=True):
        for method in table:
            vals = [table[method].get(setting_key(r, s), {}).get("psnr_mean", np.nan)
                    for r in rates]
            style = "--" if method == "end-to-end" else "-"
            ax.plot(rates, vals, style, marker="o", ms=3, label=method)
        if math.isclose(s, float(ts["noise"])):
            ax.axvline(float(ts["rate"]), color="r", lw=0.8, ls=":")
        ax.set_title(f"noise sigma = {s}", fontsize=9)
        ax.set_xlabel("sampling rate")
        ax.set_ylabel("PSNR [dB]")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def plot_examples(examples: dict, path: Path, title: str) -> None:
    """One row of images ``{name: (1, H, W)}`` in [0, 1] with their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(examples)
    fig, axes = plt.subplots(1, len(names), figsize=(1.7 * len(names), 2.0), squeeze=False)
    for a, n in zip(axes[0], names, strict=True):
        a.imshow(examples[n][0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(n, fontsize=7)
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def setting_key(rate: float, noise: float) -> str:
    """Key of a (rate, noise) setting in the tables, e.g. ``"rate=0.25,noise=0.01"``."""
    return f"rate={float(rate):g},noise={float(noise):g}"


def metrics(u: torch.Tensor, x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-image PSNR and SSIM (data range 1) of ``u`` against ``x``."""
    from spinv.metrics import psnr, ssim

    u = u.detach().float().cpu()
    x = x.float().cpu()
    return psnr(u, x, data_range=1.0).tolist(), ssim(u, x, data_range=1.0).tolist()


def markdown_report(table: dict, cfg: dict, lams: dict, meta: dict,
                    tuning: dict | None = None) -> str:
    """``results.md``: PSNR and SSIM tables (mean +- std per setting), the tuned weights and
    the validation scores of every weight tried."""
    rates = [float(r) for r in cfg["problem"]["rates"]]
    noises = [float(s) for s in cfg["problem"]["noise"]]
    ts = cfg["problem"]["train_setting"]
    keys = [setting_key(r, s) for s in noises for r in rates]
    train_key = setting_key(ts["rate"], ts["noise"])
    head = "| method | weight | " + " | ".join(
        k.replace("rate=", "r ").replace(",noise=", ", s ") + (" (train)" if k == train_key
                                                               else "") for k in keys) + " |"
    lines = [f"# {cfg['name']}: generative regularisers for MRI", "",
             f"{meta['n_test']} test slices of {cfg['data']['dataset']} at "
             f"{cfg['data']['image_size']}x{cfg['data']['image_size']}, pattern "
             f"{cfg['problem']['pattern']}; weights tuned on {meta['n_val']} validation "
             f"slices at the training setting ({train_key}). Mean +- std over test slices.",
             ""]
    for metric, fmt in (("psnr", "{:.2f} +- {:.2f}"), ("ssim", "{:.3f} +- {:.3f}")):
        lines += [f"## {metric.upper()}", "", head, "|" + "---|" * (len(keys) + 2)]
        for method in table:
            row = table[method]
            cells = [fmt.format(row[k][f"{metric}_mean"], row[k][f"{metric}_std"]) for k in keys]
            lam = lams.get(method)
            lines.append(f"| {method} | {'' if lam is None else f'{lam:g}'} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    if tuning:
        lines += ["## Weight tuning (mean validation PSNR per weight)", ""]
        for method, scores in tuning.items():
            if len(scores) < 2:
                continue
            best = max(scores, key=scores.get)
            edge = " (best at the edge of the grid)" if best in (next(iter(scores)),
                                                                 list(scores)[-1]) else ""
            lines.append(f"- {method}: " + ", ".join(f"{k}: {v:.2f}" for k, v in scores.items())
                         + edge)
        lines.append("")
    lines += [f"Wall time: {meta['seconds']:.0f} s ({meta['threads']} thread(s), device "
              f"{meta['device']})", ""]
    return "\n".join(lines)


def results_text(results: dict, out: Path) -> str:
    """The report shown after a run: ``results.md`` of ``out`` and the tuned weights (JSON)."""
    import json

    return f"{(Path(out) / 'results.md').read_text()}\n{json.dumps(results['weights'])}"
