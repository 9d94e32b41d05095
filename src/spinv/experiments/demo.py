"""The headline comparison (`spinv demo`): ordinary vs roto-translation-equivariant learned
proximal gradient (thesis Algorithm 5, Eq. 2.12) against FBP and TV on low-dose head CT.

Protocol (thesis §2.5.1-§2.5.3 at CPU scale, data from the bundled ``ct-head`` volume):

1. ``n_train`` training slices and ``n_test`` held-out slices (a separate slab of the volume),
   area-downsampled to ``image_size``; low-dose post-log sinograms with 50 views simulated on a
   twice finer grid (:func:`spinv.experiments.equivariance.data.prepare_ct_data`);
2. the held-out slices are evaluated upright and rotated by random angles (the ground truth is
   rotated, then measured), PSNR/SSIM on the whole image and inside the body mask;
3. FBP (ramp filter) and TV (PDHG, :math:`\\alpha` chosen by a 1-D search maximising the mean PSNR
   on 4 *training* slices, :func:`spinv.variational.reconstruct.tune_alpha`);
4. the ordinary (``group=None``) and equivariant (``group="C4"``) LPG models, matched width
   :math:`|H|\\cdot n_{channels}` = ``width``, trained for ``steps`` Adam steps on the same
   minibatches by the project's training engine
   (:func:`spinv.experiments.equivariance.training.train_lpg`); each leaves a run directory
   ``OUT/models/ordinary`` and ``OUT/models/C4`` that ``spinv evaluate`` and ``spinv report``
   accept (``resume=True`` continues them after an interruption).

The thesis' finding to look for: with few training images the equivariant method is better, and
its quality barely changes on rotated images while the ordinary method's drops. At demo scale
(minutes of CPU training) the numbers are indicative, not converged; the full-scale experiments
are ``spinv equivariance ...`` with ``--scale paper``.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spinv.experiments.equivariance.baselines import baseline_metrics
from spinv.experiments.equivariance.config import TVTuning
from spinv.experiments.equivariance.data import ExperimentData, prepare_ct_data
from spinv.experiments.equivariance.evaluation import image_metrics, reconstruct_all
from spinv.experiments.equivariance.training import LPGSettings, train_lpg
from spinv.experiments.protocol import Progress, staged

METHOD_ORDER = ("FBP", "TV", "ordinary LPG", "equivariant LPG (C4)")


def bf16_available(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 autocast is fast here (CPU with AVX512-BF16/AMX, or a CUDA device)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    is_supported = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(is_supported and is_supported())


@dataclass(frozen=True)
class DemoSettings:
    """Settings of the demo: ``n_train`` training and ``n_test`` held-out slices of
    ``image_size``²; LPG ``width``, ``iterations``, Adam ``steps`` and ``lr``; ``seed`` of data,
    noise, rotations and weights; ``bf16`` autocast of the networks (default ``False``: float32,
    the same numbers on every CPU; ``None``: when the hardware supports it); ``tv_iterations``
    of PDHG for TV. ``shipped``: names of :mod:`spinv.zoo` models (or run directories) to
    evaluate instead of training the two LPG models live."""

    n_train: int = 10
    steps: int = 1000
    image_size: int = 64
    n_test: int = 14
    width: int = 96
    iterations: int = 8
    lr: float = 5e-4
    seed: int = 0
    bf16: bool | None = False
    tv_iterations: int = 300
    shipped: tuple[str, ...] = ()


LEARNED = (("ordinary LPG", None), ("equivariant LPG (C4)", "C4"))


def run_demo(out_dir: str | Path, settings: DemoSettings | None = None,
             progress: Progress | None = None, resume: bool = False) -> dict:
    """Run the headline comparison and write ``results.json``, ``report.md``, ``report.html``,
    figures and the two model runs (``models/ordinary``, ``models/C4``; ``resume``: continue
    them) to ``out_dir``; returns the results dict (see the module docstring).
    ``progress(step, total, scalars)`` (the experiment protocol's) follows the training steps,
    one stage per model."""
    s = settings if settings is not None else DemoSettings()
    bf16 = bf16_available() if s.bf16 is None else s.bf16
    t_start = time.perf_counter()
    out = Path(out_dir)
    data = prepare_ct_data(s.n_train, s.image_size, s.n_test, 50, s.seed)
    recs: dict[str, dict[str, torch.Tensor]] = {}  # FBP and TV (alpha tuned on training slices)
    tuning = TVTuning(tune_images=min(4, s.n_train), alpha_grid=list(np.logspace(-3, 0, 4)),
                      golden_iterations=4, tune_iterations=s.tv_iterations)
    alpha = baseline_metrics(tuning, data, keep=recs)["alpha"]
    learn = _load_shipped if s.shipped else _train_live
    training = learn(s, data, recs, out, (progress, resume, bf16))
    truth = {"upright": (data.x_test, data.mask_test), "rotated": (data.x_rot, data.mask_rot)}
    metrics = {
        name: {split: image_metrics(r[split].float(), *truth[split]) for split in truth}
        for name, r in recs.items()
    }
    results = {
        "settings": {
            "dataset": "ct-head", "n_train": s.n_train, "n_test": int(len(data.x_test)),
            "image_size": s.image_size, "n_angles": 50, "photons": 1e4, "steps": s.steps,
            "width": s.width, "iterations": s.iterations, "lr": s.lr, "seed": s.seed,
            "bf16": bf16, "tv_alpha": alpha, "shipped": list(s.shipped),
            "tv_iterations": s.tv_iterations,
            "test_angles_deg": data.angles.tolist(),
        },
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
        },
        "metrics": metrics,
        "order": list(recs),
        "training": training,
        "wall_time_s": time.perf_counter() - t_start,
    }
    _write_outputs(out, results, recs, data)
    return results


def _train_live(s: DemoSettings, data: ExperimentData, recs: dict, out: Path,
                context: tuple) -> dict:
    """Train the ordinary and the C4 LPG model (runs ``out/models/ordinary``, ``.../C4``) and
    add their reconstructions to ``recs``; returns their training records."""
    progress, resume, bf16 = context
    lpg = LPGSettings(steps=s.steps, width=s.width, iterations=s.iterations, lr=s.lr, bf16=bf16,
                      seed=s.seed)
    training = {}
    for label, group in LEARNED:
        run_dir = out / "models" / (group or "ordinary")
        model, losses, seconds = train_lpg(data, group, lpg, run_dir, resume,
                                           staged(progress, f"training {label}"))
        recs[label] = {"upright": reconstruct_all(model, data.y_test, bf16),
                       "rotated": reconstruct_all(model, data.y_rot, bf16)}
        training[label] = {"group": group,
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "train_time_s": seconds, "losses": losses}
    return training


def _shipped_label(loaded) -> str:
    group = getattr(getattr(loaded.network, "group", None), "name", None)
    tag = " + aug." if Path(loaded.source).name.endswith("-aug") else ""
    return f"{group + ' ' if group else ''}{loaded.name.upper()}{tag} (shipped)"


def _load_shipped(s: DemoSettings, data: ExperimentData, recs: dict, out: Path,
                  context: tuple) -> dict:
    """Evaluate the shipped models ``s.shipped`` (checked against the demo's problem) and add
    their reconstructions to ``recs``; returns their training records from the zoo provenance
    and training log."""
    from spinv.problems import ct_problem
    from spinv.reconstruction import check_model_problem, load_reconstruction_model
    from spinv.training.logging import read_log
    from spinv.zoo import get_model

    progress, _, bf16 = context
    training = {}
    for i, name in enumerate(s.shipped):
        loaded = load_reconstruction_model(name)
        check_model_problem(loaded, ct_problem(s.image_size, 50, photons=1e4, upsample=2))
        label = _shipped_label(loaded)
        recs[label] = {"upright": reconstruct_all(loaded.network, data.y_test, bf16),
                       "rotated": reconstruct_all(loaded.network, data.y_rot, bf16)}
        entry = None if Path(name).exists() else get_model(name)
        prov = {} if entry is None else entry.provenance
        log = (Path(name) if entry is None else entry.path) / "log.jsonl"
        losses = [r["loss"] for r in read_log(log) if "loss" in r] if log.is_file() else []
        training[label] = {"source": name, "steps": prov.get("steps"),
                           "cpu_seconds": prov.get("cpu_seconds"),
                           "parameters": sum(p.numel() for p in loaded.network.parameters()),
                           "train_time_s": prov.get("cpu_seconds") or 0.0, "losses": losses}
        if progress is not None:
            progress(i + 1, len(s.shipped), {"stage": "evaluating shipped models"})
    return training


def format_table(results: dict) -> str:
    """Markdown table: mean ± std PSNR/SSIM per method, upright and rotated, body mask."""
    lines = [
        "| method | upright PSNR (body) | rotated PSNR (body) | upright SSIM (body) "
        "| rotated SSIM (body) | upright PSNR (image) | rotated PSNR (image) |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(m: dict, split: str, key: str, digits: int) -> str:
        v = np.asarray(m[split][key])
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.{digits}f}"

    for name in results.get("order", METHOD_ORDER):
        m = results["metrics"][name]
        lines.append(
            f"| {name} | {cell(m, 'upright', 'psnr_roi', 2)} | "
            f"{cell(m, 'rotated', 'psnr_roi', 2)} | {cell(m, 'upright', 'ssim_roi', 3)} | "
            f"{cell(m, 'rotated', 'ssim_roi', 3)} | {cell(m, 'upright', 'psnr', 2)} | "
            f"{cell(m, 'rotated', 'psnr', 2)} |"
        )
    return "\n".join(lines) + "\n"


def _examples_figure(recs: dict, data: ExperimentData, metrics: dict, index: int = 0):
    from spinv.plotting import image_panel, pyplot

    plt = pyplot()
    rows = (("upright", data.x_test), ("rotated", data.x_rot))
    cols = ("ground truth",) + tuple(recs)
    fig, axes = plt.subplots(2, len(cols), figsize=(2.3 * len(cols), 4.9), squeeze=False)
    for i, (split, x) in enumerate(rows):
        for j, name in enumerate(cols):
            img = x[index, 0] if j == 0 else recs[name][split][index, 0]
            ax = axes[i, j]
            label = None
            if j > 0:
                m = metrics[name][split]
                label = f"{m['psnr_roi'][index]:.2f} dB\nSSIM {m['ssim_roi'][index]:.3f}"
            image_panel(ax, img.detach().float().numpy(), label, fontsize=7, pad=1.2)
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(split, fontsize=9)
    fig.suptitle("held-out ct-head slice: PSNR/SSIM inside the body mask", fontsize=9)
    fig.tight_layout()
    return fig


def _violins(metrics: dict, key: str, ylabel: str):
    from spinv.plotting import violin_figure

    groups = {}
    for name in metrics:
        short = name.replace("equivariant LPG (C4)", "C4 LPG").replace(" (shipped)", "")
        for split in ("upright", "rotated"):
            groups[f"{short}\n{split}"] = metrics[name][split][key]
    return violin_figure(groups, ylabel)


def _curves(training: dict):
    from spinv.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, t in training.items():
        losses = np.asarray(t["losses"])
        k = max(1, len(losses) // 30)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(smooth)) + k - 1, smooth, label=name, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("training MSE (running mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _write_outputs(out: Path, results: dict, recs: dict, data: ExperimentData) -> None:
    from spinv.atomic import atomic_write_bytes
    from spinv.plotting import save_figure

    out.mkdir(parents=True, exist_ok=True)
    metrics = results["metrics"]
    save_figure(_examples_figure(recs, data, metrics), out / "examples.png")
    save_figure(_violins(metrics, "psnr_roi", "PSNR in body mask [dB]"), out / "psnr_violin.png")
    save_figure(_violins(metrics, "ssim_roi", "SSIM in body mask"), out / "ssim_violin.png")
    save_figure(_curves(results["training"]), out / "training_curves.png")
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=2).encode())
    s = results["settings"]
    table = format_table(results)
    params = ", ".join(f"{k}: {v['parameters']:,} parameters, {v['train_time_s']:.0f} s"
                       for k, v in results["training"].items())
    if s.get("shipped"):
        params = "shipped models, " + ", ".join(
            f"{k}: {v['parameters']:,} parameters, {v['steps']} Adam steps, "
            f"{(v['cpu_seconds'] or 0) / 3600:.1f} CPU-h (float32)"
            for k, v in results["training"].items())
    learned_line = ("Learned models: see `spinv models show NAME` for their training"
                    if s.get("shipped") else
                    f"LPG: {s['iterations']} iterations, width {s['width']}, {s['steps']} Adam "
                    f"steps (lr {s['lr']})")
    md = f"""# spinv demo: equivariant vs ordinary learned reconstruction on low-dose CT

Data: bundled `ct-head` (real head CT, Debian invesalius-examples), {s['n_train']} training
slices, {s['n_test']} held-out slices from a separate slab, {s['image_size']}² pixels; parallel-beam
CT with {s['n_angles']} views, post-log Poisson noise with N_in = {s['photons']:.0e} photons
(thesis §2.5.1), simulated on a 2× finer grid. Rotated set: the held-out ground truths rotated by
random angles, then measured. Mean ± std over the held-out slices.

{table}
TV: α = {s['tv_alpha']:.3g} (1-D search on training slices), {s['tv_iterations']} PDHG iterations,
non-negativity. {learned_line}; bf16 autocast: {s['bf16']}; {params}.
Wall time {results['wall_time_s']:.0f} s on {results['machine']['threads']} thread(s).

![examples](examples.png)

![PSNR](psnr_violin.png) ![SSIM](ssim_violin.png)

![training](training_curves.png)
"""
    atomic_write_bytes(out / "report.md", md.encode())
    html_table = _markdown_table_to_html(table)
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>spinv demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head>
<body><h1>spinv demo: equivariant vs ordinary learned reconstruction on low-dose CT</h1>
<p>{s['n_train']} training / {s['n_test']} held-out ct-head slices, {s['image_size']}&sup2;,
{s['n_angles']} views, N_in = {s['photons']:.0e}. TV &alpha; = {s['tv_alpha']:.3g}.
LPG: {s['steps']} steps. Wall time {results['wall_time_s']:.0f} s.</p>
{html_table}
<p><img src="examples.png" width="100%"></p>
<p><img src="psnr_violin.png"> <img src="ssim_violin.png"></p>
<p><img src="training_curves.png"></p></body></html>
"""
    atomic_write_bytes(out / "report.html", html.encode())


def _markdown_table_to_html(table: str) -> str:
    import html

    rows = [r.strip("|").split("|") for r in table.strip().splitlines()]
    head, body = rows[0], rows[2:]
    th = "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in body
    )
    return f"<table><tr>{th}</tr>{trs}</table>"
