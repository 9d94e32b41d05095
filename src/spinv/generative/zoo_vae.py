r"""The VAE prior of the generative chapter as a model-zoo run (``configs/zoo/vae-*.yaml``).

The generative experiment (talk 002, slides "Generative Regularizers" and "Modelling the
Covariance"; :mod:`spinv.experiments.generative`) trains its VAEs in two stages on the engine
(:func:`spinv.training.vae.train_vae`): the mean model
:math:`z\mapsto(G(z),\gamma I)` by the ELBO of :mod:`spinv.generative.train`, then a covariance
head :math:`\Sigma(z)` on top of the frozen mean. :func:`train_zoo_vae` runs the same two stages
for *one* covariance kind and writes both as run directories whose ``config.yaml`` is an
:class:`spinv.training.config.ExperimentConfig` (problem, data, ``model: {name: gaussian-vae,
...}``, train, eval), so :func:`spinv.training.load_model`, ``spinv reconstruct --model`` and
``spinv models release`` read them like every other trained model:

* ``RUN-mean/``: stage 1 (``covariance: identity``);
* ``RUN/``: stage 2, the full model (encoder, mean decoder, :math:`\gamma` and the head); this is
  the run that is released. ``RUN/recipe.json`` keeps the whole zoo config (the augmentation and
  both stages' budgets, which an ExperimentConfig has no key for).

The ``problem`` of the config is not used by the training (a prior is learned from images alone):
it is the MRI problem of the experiment (``configs/generative-small.yaml``: 32x32, variable
density, rate 0.25, sigma 0.01) at which :mod:`spinv.generative.from_model` measures the prior
for the zoo.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from spinv.training.config import ProblemConfig
from spinv.typed_config import bounds, build, read_yaml

__all__ = ["ZooVAEConfig", "load_zoo_vae_config", "retrain", "stage_config", "train_zoo_vae"]

POSITIVE = bounds(0, lo_open=True)


@dataclass(frozen=True)
class ZooData:
    """Training slices (``train`` split of ``dataset``) and their augmentation
    (:class:`spinv.generative.train.SliceSampler`: ``zoom`` range, ``flip``, ``rotate`` degrees,
    ``intensity`` range)."""

    dataset: str = "brain-t1"
    zoom: list[float] = field(default_factory=lambda: [0.8, 1.25], metadata=POSITIVE)
    flip: bool = True
    rotate: float = field(default=0.0, metadata=bounds(0, 180))
    intensity: list[float] = field(default_factory=lambda: [1.0, 1.0], metadata=POSITIVE)

    def check(self, path: str) -> None:
        """``zoom`` and ``intensity`` are ranges ``[low, high]``."""
        for key in ("zoom", "intensity"):
            value = getattr(self, key)
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"config key {path + '.' + key!r}: got {value!r}; expected "
                                 "[low, high] with low <= high")


@dataclass(frozen=True)
class ZooModel:
    """:class:`spinv.nn.vae.GaussianVAE` options (the image size is ``problem.image_size``)."""

    latent_dim: int = field(default=32, metadata=bounds(1))
    width: int = field(default=16, metadata=bounds(1))
    covariance: Literal["diagonal", "lowrank", "precision"] = "precision"
    rank: int = field(default=8, metadata=bounds(1))
    radius: int = field(default=2, metadata=bounds(0))


@dataclass(frozen=True)
class ZooTrain:
    """Budgets of the two stages (Adam, cosine from ``lr`` to ``0.05 lr``, batch
    ``batch_size``, KL weight ``beta``)."""

    mean_steps: int = field(default=1500, metadata=bounds(1))
    cov_steps: int = field(default=500, metadata=bounds(1))
    batch_size: int = field(default=32, metadata=bounds(1))
    lr: float = field(default=1e-3, metadata=POSITIVE)
    beta: float = field(default=1.0, metadata=bounds(0))


@dataclass(frozen=True)
class ZooVAEConfig:
    """A ``configs/zoo/vae-*.yaml`` file (module docstring)."""

    name: str = "vae"
    seed: int = field(default=0, metadata=bounds(0))
    num_threads: int = field(default=1, metadata=bounds(1))
    problem: ProblemConfig = field(default_factory=lambda: ProblemConfig(kind="mri"))
    data: ZooData = field(default_factory=ZooData)
    model: ZooModel = field(default_factory=ZooModel)
    train: ZooTrain = field(default_factory=ZooTrain)

    def check(self, path: str) -> None:
        """The problem is an MRI problem (the u-step of the priors is diagonal in k-space)."""
        if self.problem.kind != "mri":
            raise ValueError(f"config key 'problem.kind': got {self.problem.kind!r}; the zoo "
                             "VAE is measured on an MRI problem, expected 'mri'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_zoo_vae_config(path: str | os.PathLike) -> ZooVAEConfig:
    """Read and validate a zoo VAE config; errors name the file and the key."""
    try:
        return build(ZooVAEConfig, read_yaml(Path(path)), "")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def stage_config(cfg: ZooVAEConfig, stage: str) -> dict:
    """The ExperimentConfig dict of stage ``"mean"`` or ``"covariance"`` (validated by
    :func:`spinv.training.config.parse_config`)."""
    from spinv.training.config import parse_config

    mean = stage == "mean"
    m, t = cfg.model, cfg.train
    data = {"name": cfg.name + ("-mean" if mean else ""),
            "problem": dataclasses.asdict(cfg.problem),
            "data": {"dataset": cfg.data.dataset, "val_size": 4, "resize": "area"},
            "model": {"name": "gaussian-vae", "image_size": cfg.problem.image_size,
                      "latent_dim": m.latent_dim, "width": m.width,
                      "covariance": "identity" if mean else m.covariance, "rank": m.rank,
                      "radius": m.radius, "log_var_range": [-12.0, 2.0]},
            "train": {"steps": t.mean_steps if mean else t.cov_steps,
                      "batch_size": t.batch_size, "lr": t.lr, "lr_schedule": "cosine-torch",
                      "lr_min": 0.05 * t.lr, "seed": cfg.seed + (0 if mean else 1),
                      "checkpoint_every": 100, "log_every": 50, "device": "cpu",
                      "num_threads": cfg.num_threads, "grad_clip": 100.0},
            "eval": {"split": "test", "roi": True, "seed": 1234}}
    return parse_config(data).to_dict()


def _stage(model, sampler, cfg: ZooVAEConfig, stage: str, path: Path, progress) -> None:
    from spinv.generative.train import TrainSettings
    from spinv.training.loop import problem_record
    from spinv.training.rundir import is_run, open_run
    from spinv.training.vae import train_vae

    config = stage_config(cfg, stage)
    t = config["train"]
    settings = TrainSettings(stage, t["steps"], t["batch_size"], t["lr"], cfg.train.beta,
                             t["seed"])
    with open_run(path, config, resume=is_run(path),
                  problem=problem_record(cfg.problem)) as run:
        train_vae(model, sampler, settings, progress=progress, run=run)


def train_zoo_vae(cfg: ZooVAEConfig, out: str | os.PathLike, progress=True) -> Path:
    """Train the two stages (module docstring) into ``OUT-mean/`` and ``OUT/``; a run that
    exists is resumed (a finished one only loaded). Returns ``OUT``."""
    from spinv.data import load_dataset
    from spinv.generative.train import SliceSampler
    from spinv.nn.vae import GaussianVAE

    out = Path(out)
    torch.set_num_threads(cfg.num_threads)
    d, m = cfg.data, cfg.model
    sampler = SliceSampler(load_dataset(d.dataset, "train"), cfg.problem.image_size,
                           zoom=d.zoom, flip=d.flip, rotate=d.rotate, intensity=d.intensity)
    common = dict(image_size=cfg.problem.image_size, latent_dim=m.latent_dim, width=m.width,
                  rank=m.rank, radius=m.radius)
    torch.manual_seed(cfg.seed)  # parameter initialisation
    mean_model = GaussianVAE(covariance="identity", **common)
    _stage(mean_model, sampler, cfg, "mean", out.parent / f"{out.name}-mean", progress)
    torch.manual_seed(cfg.seed + 1)
    model = GaussianVAE(covariance=m.covariance, **common)
    state = {k: v for k, v in mean_model.state_dict().items() if not k.startswith("cov_head")}
    model.load_state_dict(state, strict=False)
    _stage(model, sampler, cfg, "covariance", out, progress)
    from spinv.atomic import atomic_write_text

    atomic_write_text(out / "recipe.json", json.dumps(cfg.to_dict(), indent=1))
    return out


def retrain(entry, out: str | os.PathLike) -> str:
    """``spinv models train NAME`` for a zoo VAE (an entry with ``recipe.json``): the two stages
    of its recipe into ``OUT-mean/`` and ``OUT/``; returns one line for the user."""
    recipe = Path(entry.path) / "recipe.json"
    try:
        cfg = build(ZooVAEConfig, json.loads(recipe.read_text()), "")
    except (OSError, ValueError) as err:
        raise ValueError(f"zoo entry {entry.name!r}: unreadable {recipe.name} ({err})") from None
    path = train_zoo_vae(cfg, out, progress=False)
    return (f"{path}: VAE trained, {cfg.train.mean_steps} mean + {cfg.train.cov_steps} "
            f"covariance steps (mean stage in {path.parent / (path.name + '-mean')})")
