"""Experiment: ordinary vs equivariant learned proximal gradient on low-dose CT (thesis §2.5.3).

At CPU scale, for each group in ``groups`` (``None`` = ordinary, ``"C4"``, ...):

1. take ``n_train`` slices of the bundled ``ct-head`` training split, downsampled to
   ``image_size`` (area averaging), and simulate low-dose post-log sinograms with 50 views
   (:func:`spinv.operators.ct.simulate_ct`: a twice finer projection grid against the inverse
   crime, Poisson noise, §2.5.1);
2. train :class:`~spinv.learned.LearnedProximalGradient` (Algorithm 5) for ``steps`` Adam
   steps on the squared error of §2.5.2 (minibatch ``batch_size``; data noise is fixed) with the
   project's training engine (:mod:`spinv.experiments.equivariance_training`). The
   thesis trains 1e5 steps at learning rate 1e-4; short CPU runs use a larger rate with
   gradient-norm clipping (``clip_grad_norm``), without which an 8-iteration C4 model at
   learning rate 1e-3 diverged after ~150 steps in our runs;
3. evaluate on ``n_test`` test slices, upright and rotated by random angles (the ground truth is
   rotated with :func:`spinv.data.transforms.rotate`, then simulated), with PSNR and SSIM
   (:mod:`spinv.metrics`, data range 1) on the whole image and on the body mask
   (:func:`spinv.data.transforms.body_mask_ct`; the thesis uses lung masks, §2.5.3).

Everything random derives from ``seed``; every model starts from the same seed. Results are
returned as a dict and, with ``out_dir``, written to ``results.json`` and ``results.md``; each
model leaves its run directory in ``out_dir/models/<name>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from spinv.atomic import atomic_write_json, atomic_write_text
from spinv.experiments.equivariance_training import LPGSettings, train_lpg

__all__ = [
    "ExperimentData",
    "assemble_data",
    "downsample",
    "image_metrics",
    "load_ct_slices",
    "prepare_ct_data",
    "reconstruct_all",
    "run_ct_comparison",
]


def load_ct_slices(split: str, count: int | None, image_size: int | None) -> torch.Tensor:
    """``(N, 1, image_size, image_size)`` float32 slices of ``ct-head`` in [0, 1]
    (``image_size=None``: the bundled resolution)."""
    from spinv.data import load_dataset

    arr = load_dataset("ct-head", split)
    if count is not None:
        if not isinstance(count, int) or count < 1 or count > len(arr):
            raise ValueError(f"count={count!r}: expected 1..{len(arr)} slices of split {split!r}")
        arr = arr[:count]
    return downsample(torch.from_numpy(arr)[:, None], image_size)


def downsample(x: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Area-average ``x`` to ``image_size``² (``None`` or the same size: unchanged), in [0, 1]."""
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="area")
    return x.clamp(0, 1).contiguous()


def _autocast(enabled: bool, like: torch.Tensor):
    return torch.autocast(like.device.type, dtype=torch.bfloat16, enabled=enabled)


def reconstruct_all(model, y: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """Apply ``model`` to each measurement in ``y`` (one at a time, no gradients); real output
    as float32, complex output (MRI) as complex64."""
    with torch.no_grad(), _autocast(bf16, y):
        rec = torch.cat([model(y[i : i + 1]) for i in range(len(y))])
    return rec.to(torch.complex64) if rec.is_complex() else rec.float()


def image_metrics(rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> dict:
    """Per-image and mean PSNR/SSIM (data range 1) of ``rec`` against ``x``, on the whole image
    and inside ``mask`` (keys ``psnr``, ``ssim``, ``psnr_roi``, ``ssim_roi``, ``mean_*``)."""
    from spinv.metrics import psnr, ssim

    rec = rec.abs() if rec.is_complex() else rec
    out = {
        "psnr": psnr(rec, x, data_range=1.0).tolist(),
        "ssim": ssim(rec, x, data_range=1.0).tolist(),
        "psnr_roi": psnr(rec, x, mask=mask, data_range=1.0).tolist(),
        "ssim_roi": ssim(rec, x, mask=mask, data_range=1.0).tolist(),
    }
    out.update({f"mean_{k}": sum(v) / len(v) for k, v in list(out.items())})
    return out


@dataclass
class ExperimentData:
    """Training and test data of a chapter-2 experiment, CT or MRI (all image tensors
    ``(N, 1, n, n)``); ``setup`` describes the problem, dataset and evaluation as sections of an
    :class:`~spinv.training.config.ExperimentConfig` (``problem``, ``data``, ``eval``) so that
    the models trained on it leave runs that ``spinv evaluate`` accepts."""

    operator: torch.nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_rot: torch.Tensor
    y_rot: torch.Tensor
    mask_test: torch.Tensor
    mask_rot: torch.Tensor
    angles: torch.Tensor
    setup: dict = field(default_factory=dict)


def prepare_ct_data(
    n_train: int,
    image_size: int = 64,
    n_test: int = 8,
    n_angles: int = 50,
    seed: int = 0,
    *,
    photons: float = 1e4,
    test_split: str = "test",
) -> ExperimentData:
    """Ground truths, low-dose sinograms (``photons`` per detector pixel) and body masks of the
    CT experiment (steps 1 and 3 of the module docstring): ``n_test`` slices of ``test_split``
    (``"test"`` or ``"val"``) upright and rotated by random angles in [-180, 180)."""
    from spinv.data.transforms import body_mask_ct
    from spinv.operators import ParallelBeamCT
    from spinv.operators.ct import simulate_ct

    if not isinstance(n_train, int) or isinstance(n_train, bool) or n_train < 1:
        raise ValueError(f"n_train={n_train!r}: expected a positive integer")
    native = load_ct_slices(test_split, n_test, None)
    data = assemble_data(
        ParallelBeamCT(image_size, n_angles),
        load_ct_slices("train", n_train, image_size),
        downsample(native, image_size),
        lambda x, s: simulate_ct(x, n_angles, photons=photons, seed=s),
        body_mask_ct,
        seed,
        x_test_native=native,
    )
    data.setup = experiment_setup(
        {"kind": "ct", "image_size": image_size, "n_angles": n_angles, "photons": photons,
         "mu": None, "upsample": 2}, "ct-head", test_split, n_test)
    return data


def experiment_setup(problem: dict, dataset: str, test_split: str, n_test: int) -> dict:
    """The ``setup`` of :class:`ExperimentData`: config sections ``problem`` (as given),
    ``data`` (``dataset``, area downsampling) and ``eval`` (ROI metrics on ``n_test`` slices of
    ``test_split``)."""
    return {"name": dataset, "problem": problem,
            "data": {"dataset": dataset, "val_size": 0, "resize": "area"},
            "eval": {"split": test_split, "roi": True, "n_images": n_test}}


def assemble_data(
    operator: torch.nn.Module,
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    simulate,
    roi_mask,
    seed: int,
    *,
    x_test_native: torch.Tensor | None = None,
) -> ExperimentData:
    """The experiment's data from ground truths: the test images rotated by random angles in
    [-180, 180) drawn from ``seed`` (rotate, then measure), measurements ``simulate(x, s)`` with
    seeds ``seed + 1, 2, 3`` for the training, upright and rotated sets, ROI masks
    ``roi_mask(x)``.

    With ``x_test_native`` (the test slices at a finer resolution, e.g. the bundled one) the
    rotation is applied there and the result area-averaged to the size of ``x_test``. Rotating
    the working-resolution images instead blurs them (bilinear interpolation), which makes the
    rotated test set *easier* for every method (thesis Appendix 2.A, Figs. 2.13-2.14); at a 4x
    finer grid that blur is largely averaged away, so upright and rotated scores compare the
    orientation, not the sharpness.
    """
    from spinv.data.transforms import rotate

    gen = torch.Generator().manual_seed(seed)
    angles = (torch.rand(len(x_test), generator=gen, dtype=torch.float64) * 2 - 1) * 180.0
    if x_test_native is None:
        x_rot = rotate(x_test, angles).clamp(0, 1)
    else:
        if len(x_test_native) != len(x_test):
            raise ValueError(
                f"x_test_native has {len(x_test_native)} images: expected {len(x_test)}, one per "
                "test image"
            )
        x_rot = downsample(rotate(x_test_native, angles), x_test.shape[-1])
    return ExperimentData(
        operator=operator,
        x_train=x_train,
        y_train=simulate(x_train, seed + 1),
        x_test=x_test,
        y_test=simulate(x_test, seed + 2),
        x_rot=x_rot,
        y_rot=simulate(x_rot, seed + 3),
        mask_test=roi_mask(x_test),
        mask_rot=roi_mask(x_rot),
        angles=angles,
    )


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
    the seed of everything; ``settings.bf16`` runs the networks under bfloat16 autocast (the
    operator and data term stay float32). ``progress(step, total, scalars)`` is called after
    every step. With ``out_dir`` each model's run goes to ``out_dir/models/<name>``
    (``resume``: continue them). Returns ``{"settings": ..., "results": {name: {...}}}`` with
    per-image and mean metrics for the ``upright`` and ``rotated`` test sets, training losses
    and wall time.
    """
    s = settings if settings is not None else LPGSettings(steps=500)
    data = prepare_ct_data(n_train, image_size, n_test, n_angles, s.seed)
    results = {}
    for group in groups:
        name = group or "ordinary"
        run_dir = None if out_dir is None else Path(out_dir) / "models" / name
        model, losses, train_time = train_lpg(data, group, s, run_dir, resume, progress)
        results[name] = {
            "group": group,
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_time_s": train_time,
            "loss_first_10": sum(losses[:10]) / len(losses[:10]),
            "loss_last_10": sum(losses[-10:]) / len(losses[-10:]),
            "losses": losses,
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
        out = Path(out_dir)
        atomic_write_json(out / "results.json", payload)
        atomic_write_text(out / "results.md", format_table(payload))
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
