"""``spinv train``: a YAML experiment trained by the engine, with resume and DDP.

Solves (approximately)
:math:`\\min_\\theta \\frac1N\\sum_{i=1}^N\\|u_i^* - \\Phi_\\theta(y_i)\\|_2^2`
(thesis, Section 2.5.2) with :func:`spinv.training.engine.fit`: Adam on minibatches simulated on
the fly by :class:`spinv.training.data.TrainingData` (a pure function of ``(seed, step)``),
the mean squared error of :class:`~spinv.training.objectives.MeanSquaredError` (per-pixel mean;
complex images use :math:`|\\cdot|^2`), the schedule ``train.lr_schedule``
(:mod:`spinv.training.schedules`) and validation PSNR/SSIM at every checkpoint. Models with an
``enforce_constraints()`` method (e.g. the nonexpansive networks of Chapter 3) have it called
after every optimiser step. Resuming restores the exact state: on CPU a resumed run ends
bit-identical to an uninterrupted one. The run directory is locked while training
(:mod:`spinv.training.rundir`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from spinv.training.checkpoint import LATEST, read_checkpoint
from spinv.training.config import ExperimentConfig, ProblemConfig, parse_config
from spinv.training.data import TrainingData, make_operator
from spinv.training.distributed import (
    DistInfo,
    cleanup,
    init_distributed,
    resolve_device,
    wrap_model,
)
from spinv.training.engine import FitOptions, fit
from spinv.training.logging import ProgressBar
from spinv.training.objectives import reconstruction_loss
from spinv.training.registry import build_model
from spinv.training.rundir import RunDirectory, open_run
from spinv.training.schedules import learning_rate
from spinv.training.sources import RankShard

__all__ = ["TrainResult", "fit_options", "learning_rate", "load_run_config",
           "problem_record", "reconstruction_loss", "train", "validate"]


@torch.no_grad()
def validate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 8) -> dict:
    """Mean loss, PSNR and SSIM of ``model`` on fixed pairs (magnitudes for complex images)."""
    from spinv.metrics import psnr, ssim

    if x.shape[0] == 0:
        return {}
    was = model.training
    model.eval()
    losses, ps, ss = [], [], []
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        out = model(yb)
        losses.append(float(reconstruction_loss(out, xb)) * xb.shape[0])
        o, r = (out.abs(), xb.abs()) if out.is_complex() else (out, xb)
        ps.append(psnr(o.float(), r.float()))
        ss.append(ssim(o.float(), r.float()))
    model.train(was)
    return {
        "val_loss": sum(losses) / x.shape[0],
        "val_psnr": float(torch.cat(ps).mean()),
        "val_ssim": float(torch.cat(ss).mean()),
    }


@dataclass
class TrainResult:
    """Summary of a (partial) training run."""

    run_dir: Path
    step: int
    final_loss: float | None
    images_per_s: float | None
    seconds: float
    validation: dict = field(default_factory=dict)
    is_main: bool = True  # False on the non-zero ranks of a distributed run


def fit_options(cfg: ExperimentConfig, max_steps: int | None = None) -> FitOptions:
    """The engine options of the ``train`` section (Adam defaults of thesis §2.5.2)."""
    tc = cfg.train
    return FitOptions(steps=tc.steps, lr=tc.lr, schedule=tc.lr_schedule, lr_min=tc.lr_min,
                      grad_clip=tc.grad_clip, precision=tc.precision,
                      checkpoint_every=tc.checkpoint_every, log_every=tc.log_every,
                      tensorboard=tc.tensorboard, stop_at=max_steps, seed=tc.seed)


def problem_record(problem: ProblemConfig) -> dict:
    """The serialised problem of a run (``problem.json``): :meth:`spinv.problems.Problem.to_dict`
    of the ``problem`` section (operator geometry, noise model, MRI mask or its recipe)."""
    from spinv.problems import Problem

    return Problem.from_config(problem).to_dict()


def _normalise(saved: dict) -> dict:
    return parse_config(saved).to_dict()


def train(
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike,
    max_steps: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    images: torch.Tensor | None = None,
    val_images: torch.Tensor | None = None,
    force: bool = False,
) -> TrainResult:
    """Train the configured model, writing a run directory ``run_dir``.

    ``max_steps`` stops early at that global step (the schedule still uses ``train.steps``),
    ``resume`` continues from the run's latest checkpoint, ``force`` allows writing into a
    non-empty folder that is not a run; ``images``/``val_images`` override the dataset (tests).
    Under ``torchrun`` each rank trains on its shard of every global batch.
    """
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"cfg: expected an ExperimentConfig, got {type(cfg).__name__}")
    if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r}: expected a non-negative integer")
    options = fit_options(cfg, max_steps)
    info = init_distributed(cfg.train.device)
    try:
        parts = _build(cfg, (images, val_images), info)  # every input checked before a write
        run = _open(cfg, Path(run_dir), resume, force, info)
        try:
            return _train(cfg, run, options, progress, parts, info)
        finally:
            run.close()
    finally:
        cleanup(info)


def _open(cfg: ExperimentConfig, path: Path, resume: bool, force: bool,
          info: DistInfo) -> RunDirectory:
    if info.is_main:
        return open_run(path, cfg.to_dict(), resume=resume, force=force,
                        problem=problem_record(cfg.problem), normalise=_normalise)
    has = (path / LATEST).is_file()  # other ranks only read the checkpoint
    if has and not resume:
        raise ValueError(f"--out {str(path)!r} already holds a training run; pass --resume")
    ck = read_checkpoint(path) if has else None
    return RunDirectory(path, None, cfg.to_dict(), ck)


def _build(cfg: ExperimentConfig, images: tuple, info: DistInfo) -> tuple:
    """Device, model, data and validation set: built (and so validated: dataset, model options,
    operator memory) before the run directory is opened, so a bad config writes nothing."""
    tc = cfg.train
    if tc.num_threads is not None:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device, info)
    operator = make_operator(cfg.problem).to(device)
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model.name, cfg.model.options, operator).to(device)
    data = TrainingData(cfg, operator, images=images[0], val_images=images[1])
    val = data.validation() if info.is_main else None
    return device, model, data, val


def _train(cfg: ExperimentConfig, run: RunDirectory, options: FitOptions, progress,
           parts: tuple, info: DistInfo) -> TrainResult:
    device, model, data, val = parts
    source = data if info.world_size == 1 else RankShard(data, info.rank, info.world_size)
    start = int(run.checkpoint.metadata["step"]) if run.checkpoint is not None else 0
    bar = ProgressBar(options.steps, initial=start, enabled=progress) if info.is_main else None
    try:
        result = fit(wrap_model(model, info, device), source, options, run=run, progress=bar,
                     validate=None if val is None else
                     (lambda m: validate(m, *val, batch_size=cfg.eval.batch_size)),
                     dist=info if info.world_size > 1 else None)
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(run.path, result.step, result.final_loss, result.images_per_s,
                       result.seconds, result.validation, info.is_main)


def load_run_config(run_dir: str | os.PathLike) -> ExperimentConfig:
    """The config saved in a run directory (``config.yaml``)."""
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} not found: is {str(run_dir)!r} a training run?")
    return parse_config(yaml.safe_load(p.read_text()))
