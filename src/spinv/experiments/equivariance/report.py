"""Tables and figures of the equivariance sweeps (:mod:`.sweeps`): ``results.json``,
``results.md`` (mean ± std over the test images of ROI and whole-image PSNR/SSIM), violin plots
of the per-image ROI PSNR/SSIM (top and bottom 5 % trimmed,
:func:`spinv.plotting.violin_figure`) and example reconstructions (Figs 2.9/2.11). Every file is
written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spinv.atomic import atomic_write_json, atomic_write_text
from spinv.plotting import image_panel, pyplot, save_figure, violin_figure

__all__ = [
    "SETS",
    "examples_figure",
    "format_markdown",
    "results_text",
    "write_outputs",
    "write_payload",
]

SETS = ("upright", "rotated")
METRICS = (("psnr_roi", "PSNR in ROI (dB)"), ("ssim_roi", "SSIM in ROI"))


def write_payload(out: Path, payload: dict[str, Any], markdown: str) -> list[Path]:
    """``results.json`` (the payload) and ``results.md`` (``markdown`` followed by the payload's
    notes) in ``out``, each written atomically; returns their paths."""
    if payload["notes"]:
        markdown += "\nNotes:\n" + "".join(f"- {n}\n" for n in payload["notes"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "results.md", markdown)
    return [out / "results.json", out / "results.md"]


def examples_figure(data, recs: dict, row: dict, split: str, title: str, k: int = 4):
    """Ground truth and each model's reconstruction of the first ``k`` held-out slices, with
    ROI SSIM (top) and PSNR (bottom), as in Figs 2.9/2.11."""
    plt = pyplot()
    x = (data.x_test if split == "upright" else data.x_rot).cpu()
    k = min(k, len(x))
    names = list(recs)
    fig, axes = plt.subplots(k, 1 + len(names), figsize=(2.2 * (1 + len(names)), 2.2 * k),
                             squeeze=False)
    for i in range(k):
        images = [("ground truth", x[i, 0], None)]
        images += [(n, recs[n][split][i, 0], row[n][split]) for n in names]
        for j, (name, img, m) in enumerate(images):
            label = None if m is None else f"{m['ssim_roi'][i]:.3f}\n{m['psnr_roi'][i]:.2f} dB"
            image_panel(axes[i, j], img.numpy(), label, fontsize=7, pad=1.2)
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def _flat_entries(payload: dict[str, Any]) -> list[tuple[str, dict]]:
    """(label, entry) pairs: ``"N=10 C4"`` for sweep-n, ``"m=4"`` for groups, preceded by the
    classical baselines (``"FBP"``/``"zero-filled"``, ``"TV"``) when the payload has them."""
    out = []
    for key in ("analytic", "TV") if payload.get("baselines") else ():
        out.append((payload["baselines"][key]["name"], payload["baselines"][key]))
    for key, value in payload["results"].items():
        if payload["experiment"] == "sweep-n":
            out.extend((f"{key} {name}", entry) for name, entry in value.items())
        else:
            out.append((key, value))
    return out


def _stat(values: list[float], digits: int) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_markdown(payload: dict[str, Any]) -> str:
    """Markdown table: mean ± std over test images of ROI and whole-image PSNR/SSIM."""
    s = payload["settings"]
    lines = [
        f"# equivariance {payload['experiment']} ({s['problem']}, {s['dataset']}, "
        f"scale {s['scale']})",
        "",
        f"{s['image_size']}² images, width {s['width']}, {s['iterations']} iterations, "
        f"{s['steps']} Adam steps (lr {s['lr']}, batch {s['batch_size']}), "
        f"evaluated on {s['n_test']} {s['eval_split']} slices, seed {s['seed']}, "
        f"{s['torch_threads']} torch thread(s).",
        "",
        "| model | set | PSNR ROI | SSIM ROI | PSNR | SSIM | final loss | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, e in _flat_entries(payload):
        for split in SETS:
            m = e[split]
            lines.append(
                f"| {label} | {split} | {_stat(m['psnr_roi'], 2)} | {_stat(m['ssim_roi'], 4)} | "
                f"{_stat(m['psnr'], 2)} | {_stat(m['ssim'], 4)} | "
                f"{_fmt(e.get('loss_last_10'), '.2e')} | {_fmt(e.get('train_time_s'), '.0f')} |"
            )
    if payload.get("baselines"):
        lines += ["", f"TV: alpha = {payload['baselines']['alpha']:.3g}, tuned on "
                  f"{s.get('tune_images', '?')} training slices."]
    return "\n".join(lines) + "\n"


def write_outputs(payload: dict[str, Any], out: Path) -> list[Path]:
    """``results.json``, ``results.md`` and one violin plot per test set and ROI metric."""
    written = write_payload(out, payload, format_markdown(payload))
    entries = _flat_entries(payload)
    for split in SETS:
        for key, ylabel in METRICS:
            fig = violin_figure({label: e[split][key] for label, e in entries}, ylabel)
            fig.axes[0].set_title(f"{payload['settings']['problem'].upper()}: {split} test images",
                                  fontsize=9)
            written.append(save_figure(fig, out / f"violin_{split}_{key}.png"))
    return written


def results_text(results: dict[str, Any], out: Path) -> str:
    """What ``spinv equivariance ...`` prints after a run: ``results.md`` and the notes."""
    text = (Path(out) / "results.md").read_text()
    return text + "".join(f"note: {n}\n" for n in results["notes"])
