"""The training loop: empirical risk minimisation with Adam, checkpoints, resume and DDP.

Solves (approximately)
:math:`\\min_\\theta \\frac1N\\sum_{i=1}^N\\|u_i^* - \\Phi_\\theta(y_i)\\|_2^2`
(thesis, Section 2.5.2) by Adam with :math:`\\beta_1 = 0.9`, :math:`\\beta_2 = 0.999`,
:math:`\\epsilon = 10^{-8}` on minibatches drawn by :class:`spinv.training.data.TrainingData`.
The minibatch loss is the mean squared error :math:`\\frac{1}{B}\\sum_j \\frac1n\\|u_j^* -
\\Phi_\\theta(y_j)\\|^2` (per-pixel mean; complex images use :math:`|\\cdot|^2`). Models with an
``enforce_constraints()`` method (e.g. the nonexpansive networks of Chapter 3) have it called
after every optimiser step.

The learning rate at step :math:`k` (0-based) of :math:`K` is a pure function of :math:`k`:
``constant``; ``cosine`` :math:`\\eta_k = \\eta\\,\\frac12(1+\\cos(\\pi k/K))`; ``step``
:math:`\\eta_k = \\eta\\,0.1^{\\lfloor 3k/K\\rfloor}` (decay by 10 at one and two thirds).
With this and the data being a pure function of ``(seed, step)``, resuming from a checkpoint
restores the exact state: on CPU a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from spinv.training.checkpoint import (
    LATEST,
    atomic_write_json,
    atomic_write_text,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from spinv.training.config import ExperimentConfig, parse_config
from spinv.training.data import TrainingData, make_operator
from spinv.training.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    cleanup,
    init_distributed,
    resolve_device,
    wrap_model,
)
from spinv.training.logging import JsonlLogger, Progress, TensorBoard
from spinv.training.registry import build_model


def learning_rate(base: float, schedule: str, step: int, total: int) -> float:
    """Learning rate of (0-based) ``step`` of ``total`` under ``schedule`` (module docstring).

    >>> learning_rate(1e-3, "cosine", 0, 10), round(learning_rate(1e-3, "step", 9, 9), 12)
    (0.001, 1e-06)
    """
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if schedule == "step":
        return base * 0.1 ** min(2, (3 * step) // total) if step < total else base * 0.1**3
    raise ValueError(f"train.lr_schedule={schedule!r}: expected constant, cosine or step")


def reconstruction_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error :math:`\\mathrm{mean}|\\,\\Phi(y) - u^*|^2` (complex-aware)."""
    if out.shape != target.shape:
        raise ValueError(
            f"model output shape {tuple(out.shape)} does not match the ground truth "
            f"{tuple(target.shape)}"
        )
    diff = out - target
    return (diff.real**2 + diff.imag**2).mean() if diff.is_complex() else (diff**2).mean()


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with the thesis' hyper-parameters (Section 2.5.2)."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)


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


def _compatible(saved: dict, cfg: ExperimentConfig) -> None:
    a, b = dict(saved), cfg.to_dict()
    for d in (a, b):
        d["train"] = {k: v for k, v in d.get("train", {}).items()
                      if k not in ("steps", "checkpoint_every", "log_every", "num_threads",
                                   "device", "tensorboard")}
        d.pop("eval", None)
    if a != b:
        diffs = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        raise ValueError(
            f"--resume: the config differs from the run's saved config in section(s) "
            f"{', '.join(diffs)}; resume with the same config or start a new --out directory"
        )


def train(
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike,
    max_steps: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    images: torch.Tensor | None = None,
    val_images: torch.Tensor | None = None,
) -> TrainResult:
    """Train the configured model, writing checkpoints and ``log.jsonl`` to ``run_dir``.

    ``max_steps`` stops early at that global step (the schedule still uses ``train.steps``),
    ``resume`` continues from ``run_dir/latest.json``; ``images``/``val_images`` override the
    dataset (tests). Under ``torchrun`` each rank trains on its shard of every global batch.
    """
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"cfg: expected an ExperimentConfig, got {type(cfg).__name__}")
    tc = cfg.train
    if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r}: expected a non-negative integer")
    stop = tc.steps if max_steps is None else min(max_steps, tc.steps)
    run = Path(run_dir)
    info = init_distributed(tc.device)
    try:
        return _train(cfg, run, stop, resume, progress, images, val_images, info)
    finally:
        cleanup(info)


def _train(cfg, run: Path, stop: int, resume: bool, progress, images, val_images,
           info: DistInfo) -> TrainResult:
    tc = cfg.train
    if tc.num_threads is not None:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device, info)
    has_ckpt = (run / LATEST).is_file()
    if has_ckpt and not resume:
        raise ValueError(
            f"--out {str(run)!r} already holds a training run; pass --resume to continue it "
            "or choose a new directory"
        )
    operator = make_operator(cfg.problem).to(device)
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model.name, cfg.model.options, operator).to(device)
    optimizer = make_optimizer(model, tc.lr)
    start = 0
    if resume and has_ckpt:
        ck = read_checkpoint(run, map_location=device)
        _compatible(ck.metadata.get("config", {}), cfg)
        model.load_state_dict(ck.model_state, strict=True)
        if ck.optimizer_state is not None:
            optimizer.load_state_dict(ck.optimizer_state)
        restore_rng_state(ck.rng_tensors, ck.metadata.get("rng", {}))
        start = int(ck.metadata["step"])
    data = TrainingData(cfg, operator, images=images, val_images=val_images)
    val = data.validation() if info.is_main else None
    ddp_model = wrap_model(model, info, device)
    ddp_model.train()
    logger = tboard = bar = None
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        logger = JsonlLogger(run / "log.jsonl", resume_step=start if resume else None)
        tboard = TensorBoard(run / "tensorboard", tc.tensorboard)
        bar = Progress(total=stop, initial=start, enabled=progress)
    enforce = getattr(model, "enforce_constraints", None)
    t0 = time.perf_counter()
    loss_value = None
    rate = None
    val_metrics: dict = {}
    step = start
    try:
        while step < stop:
            ts = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(tc.lr, tc.lr_schedule, step, tc.steps)
            x, y = data.batch(step, info.rank, info.world_size)
            optimizer.zero_grad(set_to_none=True)
            loss = reconstruction_loss(ddp_model(y), x)
            loss.backward()
            if tc.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            if callable(enforce):
                with torch.no_grad():
                    enforce()
            step += 1
            loss_value = all_reduce_mean(float(loss.detach()), info)
            dt = time.perf_counter() - ts
            rate = tc.batch_size / dt if dt > 0 else float("inf")
            if info.is_main:
                rec = {"step": step, "loss": loss_value, "lr": optimizer.param_groups[0]["lr"],
                       "images_per_s": rate, "elapsed": time.perf_counter() - t0}
                logger.write(rec)
                if step % tc.log_every == 0 or step == stop:
                    tboard.scalars(step, rec)
                bar.update(loss_value, rate)
            if step % tc.checkpoint_every == 0 or step == stop:
                if info.is_main:
                    val_metrics = validate(model, *val, batch_size=cfg.eval.batch_size)
                    if val_metrics:
                        logger.write({"step": step, **val_metrics})
                        tboard.scalars(step, val_metrics)
                    save_checkpoint(run, model, optimizer, step, cfg,
                                    extra={"validation": val_metrics})
                barrier(info)
    finally:
        if info.is_main:
            bar.close()
            logger.close()
            tboard.close()
    seconds = time.perf_counter() - t0
    done = step - start
    result = TrainResult(run, step, loss_value,
                         (done * tc.batch_size / seconds) if done and seconds > 0 else rate,
                         seconds, val_metrics, info.is_main)
    if info.is_main:
        atomic_write_json(run / "summary.json", {
            "step": step, "steps": tc.steps, "final_loss": loss_value,
            "images_per_s": result.images_per_s, "seconds_this_session": seconds,
            "world_size": info.world_size, "device": str(device),
            "torch_threads": torch.get_num_threads(), "validation": val_metrics,
        })
    return result


def load_run_config(run_dir: str | os.PathLike) -> ExperimentConfig:
    """The config saved in a run directory (``config.yaml``)."""
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} not found: is {str(run_dir)!r} a training run?")
    return parse_config(yaml.safe_load(p.read_text()))
