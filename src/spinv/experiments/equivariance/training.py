"""Training the learned proximal gradient models of the chapter-2 experiments (thesis §2.5.2).

Every model of ``spinv equivariance …`` and ``spinv demo`` is trained by the project's one
loop, :func:`spinv.training.engine.fit`: Adam (:math:`\\beta = (0.9, 0.999)`,
:math:`\\epsilon = 10^{-8}`) on the empirical risk :math:`\\frac1N\\sum_i\\|u_i^* -
\\Phi_\\theta(y_i)\\|_2^2`, with minibatches of the experiment's fixed, pre-simulated pairs
(:class:`spinv.training.sources.FixedPairs`, indices ``torch.randint(0, N, (B,))`` from a
generator seeded with ``seed + 4``, so every model with the same seed sees the same
minibatches), the squared modulus of the error (:class:`~spinv.training.objectives.
MeanSquaredError` with ``modulus=True``), a constant learning rate, gradient-norm clipping and
optional bf16 autocast. The numbers are those of the private Adam loop these experiments used
before (same seeds, minibatches and float operations).

With a run directory, each model leaves a run that ``spinv evaluate``, ``spinv report`` and
``load_model`` accept: its ``config.yaml`` is an :class:`~spinv.training.config.
ExperimentConfig` describing the same problem (CT simulated on a twice finer grid, or MRI with
the same line pattern), the ``lpg`` model and the training settings; ``provenance.json``
records the fixed pairs. A killed experiment re-run with ``resume=True`` continues each model
from its last checkpoint and ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spinv.learned import LearnedProximalGradient

__all__ = ["LPGSettings", "TrainedModel", "lpg_run_config", "train_lpg"]


@dataclass(frozen=True)
class LPGSettings:
    """Model and training settings of one learned proximal gradient model (Algorithm 5).

    ``width`` (|H| x channels), ``iterations``, ``memory``; Adam ``steps``, ``lr``,
    ``batch_size``, ``clip_grad_norm`` (``None``: no clipping), ``bf16`` autocast; ``seed`` of
    the weights (the minibatch order uses ``seed + 4``); ``checkpoint_every`` (``None``: a tenth
    of the steps).
    """

    steps: int
    width: int = 96
    iterations: int = 8
    memory: int = 5
    lr: float = 5e-4
    batch_size: int = 1
    clip_grad_norm: float | None = 1.0
    bf16: bool = False
    seed: int = 0
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key}={value!r}: expected a positive integer")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r}: expected a positive learning rate")

    @classmethod
    def from_config(cls, cfg) -> LPGSettings:
        """The settings of an equivariance config
        (:class:`~spinv.experiments.equivariance.config.EquivarianceConfig`)."""
        return cls(steps=cfg.steps, width=cfg.width, iterations=cfg.iterations,
                   memory=cfg.memory, lr=cfg.lr, batch_size=cfg.batch_size,
                   clip_grad_norm=cfg.clip_grad_norm, bf16=cfg.bf16, seed=cfg.seed,
                   checkpoint_every=cfg.checkpoint_every)

    def model_options(self, group: str | None) -> dict:
        """Options of the catalogued ``lpg`` model."""
        return {"group": group, "width": self.width, "iterations": self.iterations,
                "memory": self.memory, "seed": self.seed}


@dataclass
class TrainedModel:
    """A trained model, its per-step training losses, the training wall time (all sessions) and
    its run directory (``None`` when trained in memory)."""

    model: LearnedProximalGradient
    losses: list[float]
    seconds: float
    run_dir: Path | None = None

    def __iter__(self):  # ``model, losses, seconds = train_lpg(...)``
        return iter((self.model, self.losses, self.seconds))


def lpg_run_config(data, group: str | None, settings: LPGSettings, name: str) -> dict:
    """The :class:`~spinv.training.config.ExperimentConfig` (as a validated dict) of a model
    trained on ``data`` (whose ``setup`` describes its problem and dataset)."""
    from spinv.training.config import parse_config

    setup = data.setup
    if not setup:
        raise ValueError("data.setup is empty: build the data with equivariance.data.prepare_data")
    every = settings.checkpoint_every or max(1, settings.steps // 10)
    cfg = {
        "name": name,
        "problem": setup["problem"],
        "data": {**setup["data"], "n_train": int(len(data.x_train))},
        "model": {"name": "lpg", **settings.model_options(group)},
        "train": {"steps": settings.steps, "batch_size": settings.batch_size,
                  "lr": settings.lr, "lr_schedule": "constant", "seed": settings.seed,
                  "checkpoint_every": every, "log_every": 10,
                  "device": data.x_train.device.type, "grad_clip": settings.clip_grad_norm,
                  "precision": "bf16" if settings.bf16 else "float32"},
        "eval": setup.get("eval", {}),
    }
    return parse_config(cfg).to_dict()


def train_lpg(
    data,
    group: str | None,
    settings: LPGSettings,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress=None,
) -> TrainedModel:
    """Train one LPG model on ``data`` (module docstring) on the device of ``data.x_train``.

    With ``run_dir`` the model's run is written there (``resume``: continue it);
    ``progress(step, total, scalars)`` is called after every step.
    """
    from spinv.training.engine import FitOptions, fit
    from spinv.training.objectives import MeanSquaredError
    from spinv.training.registry import build_model
    from spinv.training.sources import FixedPairs

    if not isinstance(settings, LPGSettings):
        raise TypeError(f"settings: expected LPGSettings, got {type(settings).__name__}")
    device = data.x_train.device
    model = build_model("lpg", settings.model_options(group), data.operator).to(device)
    source = FixedPairs(data.x_train, data.y_train, settings.batch_size, settings.seed + 4,
                        name=f"{(data.setup or {}).get('name', 'experiment')} training pairs")
    name = group or "ordinary"
    config = lpg_run_config(data, group, settings, name) if run_dir is not None else None
    options = FitOptions(
        steps=settings.steps, lr=settings.lr, grad_clip=settings.clip_grad_norm,
        precision="bf16" if settings.bf16 else "float32", seed=settings.seed,
        checkpoint_every=config["train"]["checkpoint_every"] if config else None,
    )
    run = None if run_dir is None else _open(Path(run_dir), config, resume)
    try:
        result = fit(model, source, options, objective=MeanSquaredError(modulus=True),
                     run=run, progress=progress)
    finally:
        if run is not None:
            run.close()
    return TrainedModel(model, result.losses, result.seconds_total,
                        None if run is None else run.path)


def _open(path: Path, config: dict, resume: bool):
    from spinv.training.config import parse_config
    from spinv.training.loop import problem_record
    from spinv.training.rundir import is_run, open_run

    return open_run(path, config, resume=resume and is_run(path),
                    problem=problem_record(parse_config(config).problem),
                    normalise=lambda d: parse_config(d).to_dict())
