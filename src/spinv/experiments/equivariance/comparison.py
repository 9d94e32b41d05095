"""Ordinary vs equivariant learned proximal gradient on low-dose CT (thesis §2.5.3), the
in-memory form of the ``sweep-n`` experiment at one training-set size.

For each group in ``groups`` (``None`` = ordinary, ``"C4"``, ...): train
:class:`~spinv.learned.LearnedProximalGradient` (Algorithm 5) on ``n_train`` slices of
``ct-head`` (:mod:`spinv.experiments.equivariance.data`) with the project's training engine
(:mod:`spinv.experiments.equivariance.training`), and evaluate it on ``n_test`` test slices,
upright and rotated, with PSNR/SSIM on the whole image and the body mask
(:mod:`spinv.experiments.equivariance.evaluation`). The thesis trains 1e5 steps at learning
rate 1e-4; short CPU runs use a larger rate with gradient-norm clipping (``clip_grad_norm``),
without which an 8-iteration C4 model at learning rate 1e-3 diverged after ~150 steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from spinv.atomic import atomic_write_json, atomic_write_text
from spinv.experiments.equivariance.data import prepare_ct_data
from spinv.experiments.equivariance.evaluation import image_metrics, reconstruct_all
from spinv.experiments.equivariance.training import LPGSettings, train_lpg

__all__ = ["format_table", "run_ct_comparison"]


def run_ct_comparison(
    n_train: int = 20,
    groups: tuple = (None, "C4"),
    settings: LPGSettings | None = None,
    image_size: int = 64,
    n_test: int = 8,
    n_angles: int = 50,
    out_dir: str | os.PathLike | None = None,
    progress=None,
    resume: bool = False,
) -> dict:
    """Train and compare ordinary/equivariant LPG models; see the module docstring.

    ``settings`` (default ``LPGSettings(steps=500)``) holds the model and training settings and
    the seed of everything. ``progress(step, total, scalars)`` is called after every step. With
    ``out_dir`` each model's run goes to ``out_dir/models/<name>`` (``resume``: continue them)
    and ``results.json``/``results.md`` are written. Returns ``{"settings": ..., "results":
    {name: {...}}}`` with per-image and mean metrics for the ``upright`` and ``rotated`` sets.
    """
    s = settings if settings is not None else LPGSettings(steps=500)
    data = prepare_ct_data(n_train, image_size, n_test, n_angles, s.seed)
    results = {}
    for group in groups:
        name = group or "ordinary"
        run_dir = None if out_dir is None else Path(out_dir) / "models" / name
        model, losses, train_time = train_lpg(data, group, s, run_dir, resume, progress)
        results[name] = {
            "group": group, "parameters": sum(p.numel() for p in model.parameters()),
            "train_time_s": train_time,
            "loss_first_10": sum(losses[:10]) / len(losses[:10]),
            "loss_last_10": sum(losses[-10:]) / len(losses[-10:]), "losses": losses,
            "upright": image_metrics(reconstruct_all(model, data.y_test, s.bf16), data.x_test,
                                     data.mask_test),
            "rotated": image_metrics(reconstruct_all(model, data.y_rot, s.bf16), data.x_rot,
                                     data.mask_rot),
        }
    payload = {
        "settings": {
            "n_train": n_train, "n_test": len(data.x_test),
            "groups": [g or "ordinary" for g in groups], "steps": s.steps,
            "image_size": image_size, "width": s.width, "iterations": s.iterations, "lr": s.lr,
            "batch_size": s.batch_size, "clip_grad_norm": s.clip_grad_norm, "bf16": s.bf16,
            "n_angles": n_angles, "seed": s.seed, "test_angles_deg": data.angles.tolist(),
            "torch_threads": torch.get_num_threads(),
        },
        "results": results,
    }
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "results.json", payload)
        atomic_write_text(Path(out_dir) / "results.md", format_table(payload))
    return payload


def format_table(payload: dict) -> str:
    """Markdown table of mean PSNR/SSIM (whole image and body mask), upright and rotated."""
    lines = [
        "| model | set | PSNR | SSIM | PSNR (body) | SSIM (body) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in payload["results"].items():
        for split in ("upright", "rotated"):
            m = r[split]
            lines.append(
                f"| {name} | {split} | {m['mean_psnr']:.2f} | {m['mean_ssim']:.4f} | "
                f"{m['mean_psnr_roi']:.2f} | {m['mean_ssim_roi']:.4f} | {r['train_time_s']:.0f} |"
            )
    return "\n".join(lines) + "\n"
