"""Equivariance experiments of thesis §2.5: training-set-size sweep and group-order sweep.

* :func:`run_sweep_n` (§2.5.3/§2.5.4, Figs 2.8-2.11): for each training-set size
  :math:`N` and each model (ordinary, i.e. translation equivariant, and equivariant with
  :math:`H = \\mathbb{Z}_4`, Prop. 2.4.1), train the learned proximal gradient method
  (Algorithm 5, proximal blocks of Eq. (2.12)) on the first :math:`N` training slices and test
  it on held-out slices, upright and randomly rotated, with PSNR/SSIM inside the ROI (the SSIM
  map averaged over the mask, §2.5.2 "Performance measures"). Every :math:`N` uses the same
  number of Adam steps, as in the thesis. :math:`N` is capped at the training slices available
  (``ct-head``: 60, ``brain-t1``: 84); the cap is recorded in ``notes``.
* :func:`run_groups` (§2.5.2, Fig. 2.7): at fixed :math:`N`, the equivariant method with the
  groups :math:`H = \\mathbb{Z}_m` (``"C<m>"``), evaluated on the validation split.

Data: :mod:`spinv.experiments.equivariance_data`; training (the project's engine):
:mod:`spinv.experiments.equivariance_training`; settings:
:mod:`spinv.experiments.equivariance_config`. Results are returned as a dict and, with
``out_dir``, written atomically as ``results.json``, ``results.md`` and violin plots (PNG) of
the per-image ROI PSNR/SSIM (top and bottom 5 % trimmed, :func:`spinv.plotting.violin_figure`);
every trained model leaves a run directory ``out_dir/models/<name>`` (``N2-C4``, ``m4``, …)
that ``spinv evaluate`` and ``spinv report`` accept; ``resume=True`` continues the runs of a
killed experiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_write_json, atomic_write_text
from spinv.experiments.equivariance import image_metrics, reconstruct_all
from spinv.experiments.equivariance_baselines import baseline_metrics
from spinv.experiments.equivariance_data import available, data_to, prepare_data
from spinv.experiments.equivariance_training import LPGSettings, model_progress, train_lpg
from spinv.plotting import image_panel, pyplot, save_figure, violin_figure

__all__ = [
    "evaluate_model",
    "run_groups",
    "run_sweep_n",
    "capped_sizes",
    "model_dir",
    "n_test_for",
    "settings_payload",
    "setup_run",
    "train_and_time",
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


def setup_run(cfg: dict[str, Any]) -> torch.device:
    """Apply ``threads`` and resolve ``device`` (``auto``: CUDA if available, else CPU)."""
    if cfg["threads"] is not None:
        torch.set_num_threads(cfg["threads"])
    name = cfg["device"]
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"config key 'device': got {name!r}; expected auto, cpu, cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"config key 'device': {name!r} requested but CUDA is not available")
    return device


def capped_sizes(cfg: dict[str, Any], values: list[int], notes: list[str]) -> list[int]:
    have = available(cfg["problem"], "train")
    out: list[int] = []
    for n in values:
        if n > have:
            notes.append(f"N={n} capped at the {have} training slices of the dataset")
            n = have
        if n not in out:
            out.append(n)
    return out


def n_test_for(cfg: dict[str, Any], notes: list[str]) -> int:
    have = available(cfg["problem"], cfg["eval_split"])
    if cfg["n_test"] > have:
        notes.append(f"n_test={cfg['n_test']} capped at the {have} slices of split "
                     f"{cfg['eval_split']!r}")
        return have
    return cfg["n_test"]


def load_run_data(cfg: dict[str, Any], n_train: int, n_test: int, device: torch.device):
    """The data of one training-set size, on ``device``."""
    data = prepare_data(cfg["problem"], n_train, cfg["image_size"], n_test, seed=cfg["seed"],
                        test_split=cfg["eval_split"], n_angles=cfg["n_angles"],
                        photons=cfg["photons"], rate=cfg["rate"], noise=cfg["noise"])
    return data_to(data, device)


def model_dir(out_dir: str | os.PathLike | None, name: str) -> Path | None:
    """Run directory of the model ``name`` of an experiment writing to ``out_dir``."""
    return None if out_dir is None else Path(out_dir) / "models" / name


def train_and_time(cfg: dict[str, Any], data, group: str | None, desc: str, progress: bool,
                   run_dir: Path | None = None, resume: bool = False):
    """Train one model with the settings of ``cfg`` (a progress bar over the steps if
    ``progress``); its run goes to ``run_dir``. Returns ``(model, losses, seconds)``."""
    with model_progress(progress, cfg["steps"], desc) as bar:
        return tuple(train_lpg(data, group, LPGSettings.from_config(cfg), run_dir, resume, bar))


def evaluate_model(model, data, bf16: bool = False, keep: dict | None = None) -> dict[str, dict]:
    """ROI and whole-image metrics on the upright and rotated held-out sets; with a dict
    ``keep``, the reconstructions (moduli, CPU) are stored in it under ``upright``/``rotated``."""
    model.eval()
    out = {}
    for split, y, x, mask in (("upright", data.y_test, data.x_test, data.mask_test),
                              ("rotated", data.y_rot, data.x_rot, data.mask_rot)):
        rec = reconstruct_all(model, y, bf16).cpu()
        out[split] = image_metrics(rec, x.cpu(), mask.cpu())
        if keep is not None:
            keep[split] = rec.abs() if rec.is_complex() else rec
    return out


def _entry(model, losses: list[float], seconds: float, metrics: dict, n_train: int) -> dict:
    k = min(10, len(losses))
    return {
        "group": model.group.name if model.group is not None else None,
        "n_train": n_train,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_time_s": seconds,
        "loss_first_10": sum(losses[:k]) / k,
        "loss_last_10": sum(losses[-k:]) / k,
        "losses": losses,
        **metrics,
    }


def settings_payload(cfg: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    common = ("problem", "image_size", "n_test", "width", "iterations", "memory", "steps", "lr",
              "batch_size", "clip_grad_norm", "bf16", "seed", "eval_split")
    extra = ("n_angles", "photons") if cfg["problem"] == "ct" else ("rate", "noise")
    out = {k: cfg[k] for k in (*common, *extra, *keys)}
    out.update(command=cfg["command"], scale=cfg["scale"], torch_threads=torch.get_num_threads(),
               dataset={"ct": "ct-head", "mri": "brain-t1"}[cfg["problem"]])
    return out


def run_sweep_n(cfg: dict[str, Any], out_dir: str | os.PathLike | None = None,
                progress: bool = False, resume: bool = False) -> dict[str, Any]:
    """Training-set-size sweep (Figs 2.8/2.10); see the module docstring.

    Returns ``{"experiment", "settings", "notes", "results": {"N=<n>": {model: entry}}}``
    where an entry holds ``upright``/``rotated`` metrics (per image and ``mean_*``), training
    losses and wall time.
    """
    device = setup_run(cfg)
    notes: list[str] = []
    sizes = capped_sizes(cfg, cfg["n_train_values"], notes)
    n_test = n_test_for(cfg, notes)
    results: dict[str, dict] = {}
    baselines, baseline_recs = None, {}
    for n in sizes:
        data = load_run_data(cfg, n, n_test, device)
        if baselines is None and cfg["baselines"]:  # the held-out sets are the same for every N
            baselines = baseline_metrics(cfg, data, keep=baseline_recs)
        row, recs = {}, {}
        for group in cfg["groups"]:
            name = group or "ordinary"
            model, losses, secs = train_and_time(cfg, data, group, f"N={n} {name}", progress,
                                                 model_dir(out_dir, f"N{n}-{name}"), resume)
            recs[name] = {}
            metrics = evaluate_model(model, data, cfg["bf16"], keep=recs[name])
            row[name] = _entry(model, losses, secs, metrics, n)
        results[f"N={n}"] = row
    keys = ("groups", "baselines", "alpha_grid", "tune_images", "tune_iterations")
    payload = {"experiment": "sweep-n", "settings": settings_payload(cfg, keys),
               "n_train_values": sizes, "notes": notes, "test_angles_deg": data.angles.tolist(),
               "results": results, "baselines": baselines}
    if out_dir is not None:
        write_outputs(payload, Path(out_dir))
        shown = {**{b["name"]: b for b in (baselines or {}).values() if isinstance(b, dict)
                    and "name" in b}, **row}
        for split in SETS:  # Figs 2.9/2.11: examples at the largest N
            fig = examples_figure(data, {**baseline_recs, **recs}, shown, split,
                                  f"N={sizes[-1]}, {split}")
            save_figure(fig, Path(out_dir) / f"examples_{split}.png")
    return payload


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


def run_groups(cfg: dict[str, Any], out_dir: str | os.PathLike | None = None,
               progress: bool = False, resume: bool = False) -> dict[str, Any]:
    """Group-order sweep (Fig. 2.7): equivariant models with :math:`H=\\mathbb{Z}_m` for each
    ``m`` in ``orders`` (``m = 1``: the trivial group), trained on the same ``n_train`` slices.
    Returns ``{"experiment", "settings", "notes", "results": {"m=<m>": entry}}``."""
    device = setup_run(cfg)
    notes: list[str] = []
    (n,) = capped_sizes(cfg, [cfg["n_train"]], notes)
    n_test = n_test_for(cfg, notes)
    data = load_run_data(cfg, n, n_test, device)
    results: dict[str, dict] = {}
    for m in cfg["orders"]:
        model, losses, secs = train_and_time(cfg, data, f"C{m}", f"m={m}", progress,
                                             model_dir(out_dir, f"m{m}"), resume)
        results[f"m={m}"] = _entry(model, losses, secs, evaluate_model(model, data, cfg["bf16"]),
                                   n)
    payload = {"experiment": "groups", "settings": settings_payload(cfg, ("orders",)),
               "n_train_used": n, "notes": notes, "test_angles_deg": data.angles.tolist(),
               "results": results}
    if out_dir is not None:
        write_outputs(payload, Path(out_dir))
    return payload


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
