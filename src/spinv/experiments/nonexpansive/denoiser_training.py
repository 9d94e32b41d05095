"""Training of the chapter-3 denoisers (DnCNN, nonexpansive and averaged
:class:`~spinv.nn.nonexpansive.NonexpansiveDenoiser`) on the training engine.

:func:`train_denoiser` minimises :math:`\\mathbb E\\,\\|\\Phi(u+\\sigma n)-u\\|^2` over random
crops :math:`u` of training images with fresh Gaussian noise every step
(:class:`~spinv.training.sources_images.NoisyCrops`) by Adam
(:func:`spinv.training.engine.fit`); for the residual denoiser of Eq. 3.6,
:math:`\\Phi = \\mathrm{id}-\\gamma\\Gamma`, this is :math:`\\|\\gamma\\Gamma(y)-(y-u)\\|^2`. The
engine calls the model's ``enforce_constraints()`` after every step (the projection onto the
certified norm bounds of Eq. 3.5-3.6). ``lr_schedule="cosine"`` anneals the rate to 0 by torch's
recursive ``CosineAnnealingLR`` formula (``schedule="cosine-torch"``), as the loop this
replaces did, so the weights are bit-identical to it.

Given a ``run_dir``, the denoiser leaves a run directory there (weights, the config in the
:mod:`spinv.training.config` schema -- problem ``denoise`` at the crop size, the catalogued
model and its options, the optimiser settings --, ``problem.json``, ``log.jsonl``, summary,
provenance), so that ``spinv evaluate RUN``, ``spinv lipschitz RUN``, ``spinv report RUN`` and
``spinv nonexpansive pnp --denoiser RUN`` accept it; an existing run is resumed (a finished one
only reloaded).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spinv.experiments.protocol import Progress

__all__ = ["CHECKPOINT_EVERY", "DenoiserTraining", "catalogue_entry", "denoiser_run_config",
           "train_denoiser"]

CHECKPOINT_EVERY = 100  # steps between checkpoints of a denoiser's run directory


@dataclass(frozen=True)
class DenoiserTraining:
    """Settings of :func:`train_denoiser`: noise level ``sigma``, Adam ``steps`` (0: no
    training) on ``batch_size`` random ``crop x crop`` crops with learning rate ``lr`` and
    ``lr_schedule`` ``"constant"`` or ``"cosine"`` (to 0), crops and noise drawn from
    ``seed``; ``dataset`` names the training images in the run's config."""

    sigma: float
    steps: int
    batch_size: int = 5
    crop: int = 32
    lr: float = 1e-3
    seed: int = 0
    lr_schedule: str = "constant"
    dataset: str = "natural"

    def __post_init__(self) -> None:
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma)
                and self.sigma > 0):
            raise ValueError(f"sigma={self.sigma!r}: expected a number > 0")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps={self.steps!r}: expected an integer >= 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule={self.lr_schedule!r}: expected 'constant' or "
                             "'cosine'")

    def fit_options(self):
        """:class:`~spinv.training.engine.FitOptions` of the engine (``steps >= 1``)."""
        from spinv.training.engine import FitOptions

        schedule = "cosine-torch" if self.lr_schedule == "cosine" else "constant"
        return FitOptions(steps=self.steps, lr=self.lr, schedule=schedule,
                          checkpoint_every=min(CHECKPOINT_EVERY, self.steps), seed=self.seed)


def catalogue_entry(model: nn.Module) -> dict:
    """The ``model:`` section that rebuilds ``model`` from the catalogue
    (:mod:`spinv.training.models`): its name and the model's ``config`` options."""
    from spinv.nn.dncnn import DnCNN
    from spinv.nn.nonexpansive import NonexpansiveDenoiser

    for cls, name in ((DnCNN, "dncnn"), (NonexpansiveDenoiser, "nonexpansive-denoiser")):
        if isinstance(model, cls):  # plain JSON types (tuples become lists)
            return json.loads(json.dumps({"name": name, **model.config}))
    raise TypeError(f"model: expected a DnCNN or a NonexpansiveDenoiser, got "
                    f"{type(model).__name__}")


def denoiser_run_config(model: nn.Module, settings: DenoiserTraining,
                        name: str = "denoiser") -> dict:
    """Run config of a denoiser trained with ``settings`` (validated by
    :func:`spinv.training.config.parse_config`)."""
    from spinv.training.config import parse_config

    s = settings
    options = s.fit_options()
    return parse_config({
        "name": name,
        "problem": {"kind": "denoise", "image_size": s.crop, "noise_sigma": float(s.sigma)},
        "data": {"dataset": s.dataset},
        "model": catalogue_entry(model),
        "train": {"steps": s.steps, "batch_size": s.batch_size, "lr": float(s.lr),
                  "lr_schedule": options.schedule, "seed": s.seed,
                  "checkpoint_every": options.checkpoint_every},
    }).to_dict()


def train_denoiser(model: nn.Module, images: torch.Tensor, settings: DenoiserTraining,
                   progress: Progress | None = None,
                   run_dir: str | os.PathLike | None = None) -> dict:
    """Train ``model`` on crops of ``images`` ``(N, C, H, W)`` (module docstring); returns
    ``train_seconds`` (all sessions of the run), ``final_loss`` (mean of the last 20 losses)
    and ``steps``. ``progress(step, total, scalars)`` (the engine's) after every step of this
    session."""
    from spinv.problems import denoising_problem
    from spinv.training.engine import fit
    from spinv.training.rundir import is_run, open_run
    from spinv.training.sources_images import NoisyCrops

    if not isinstance(settings, DenoiserTraining):
        raise TypeError(f"settings: expected DenoiserTraining, got {type(settings).__name__}")
    if settings.steps == 0:
        model.eval()
        return {"train_seconds": 0.0, "final_loss": None, "steps": 0}
    source = NoisyCrops(images, settings.sigma, settings.batch_size, settings.crop,
                        settings.seed)
    options = settings.fit_options()
    if run_dir is None:
        result = fit(model, source, options, progress=progress)
    else:
        config = denoiser_run_config(model, settings, name=os.path.basename(run_dir))
        problem = denoising_problem(float(settings.sigma), settings.crop).to_dict()
        with open_run(run_dir, config, resume=is_run(run_dir), problem=problem) as run:
            result = fit(model, source, options, run=run, progress=progress)
    model.eval()
    return {"train_seconds": result.seconds_total,
            "final_loss": float(np.mean(result.losses[-20:])), "steps": settings.steps}
