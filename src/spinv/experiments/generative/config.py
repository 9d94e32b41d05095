"""Typed config of the generative experiment (``configs/generative-*.yaml``) and of
``spinv generative train``.

A config file is flat: top-level ``name``, ``seed``, ``device``, ``num_threads`` (and
optionally ``models``, a folder of VAE runs from ``spinv generative train`` to reuse), and one
section per part of the experiment: ``data``, ``model``, ``train`` (the VAE), ``problem`` (the
MRI settings; ``train_setting`` is the one the weights and the end-to-end network are tuned
for), ``recon`` (alternating minimisation), ``tuning`` (weight grids), ``tv`` and
``end_to_end``. Missing keys take the defaults of ``configs/generative-small.yaml``. An unknown
key, a wrong type or an out-of-range value is one ``ValueError`` naming the key path
(``model.latent_dim``) and the file.

>>> from spinv.experiments.generative import COMPARISON
>>> cfg = COMPARISON.load({"problem": {"rates": [0.3]}, "tv": {"iterations": 50}})
>>> cfg.problem.rates, cfg.problem.noise, cfg.tv.iterations
([0.3], [0.01, 0.03], 50)
>>> COMPARISON.load({"model": {"latent": 3}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config: config key 'model.latent': unknown key; allowed: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from spinv.generative.zoo_vae import ZooTrain
from spinv.typed_config import bounds

__all__ = ["DataConfig", "EndToEndConfig", "GenerativeConfig", "ModelConfig", "ProblemConfig",
           "ReconConfig", "Setting", "TrainConfig", "TuningConfig", "TVConfig"]

POSITIVE = bounds(0, lo_open=True)
RATE = bounds(0, 1, lo_open=True)
COVARIANCES = Literal["identity", "diagonal", "lowrank", "precision"]


def _non_empty_lists(obj, path: str) -> None:
    for f in dataclasses.fields(obj):
        if isinstance(getattr(obj, f.name), list) and not getattr(obj, f.name):
            key = f"{path}.{f.name}" if path else f.name
            raise ValueError(f"config key {key!r}: expected a non-empty list")


@dataclass(frozen=True)
class DataConfig:
    """Slices of ``dataset`` at ``image_size``; training augmentation (``zoom`` range,
    ``flip``); ``n_val`` validation and ``n_test`` test slices (evenly spaced)."""

    dataset: str = "brain-t1"
    image_size: int = field(default=32, metadata=bounds(4))
    zoom: list[float] = field(default_factory=lambda: [0.8, 1.25], metadata=POSITIVE)
    flip: bool = True
    n_val: int = field(default=4, metadata=bounds(1))
    n_test: int = field(default=8, metadata=bounds(1))

    def check(self, path: str) -> None:
        """``zoom`` is a range ``[low, high]``."""
        if len(self.zoom) != 2 or self.zoom[0] > self.zoom[1]:
            raise ValueError(f"config key {path + '.zoom'!r}: got {self.zoom!r}; expected "
                             "[low, high] with low <= high")


@dataclass(frozen=True)
class ModelConfig:
    """The VAE (latent dimension, width) and its covariance heads (``covariances``;
    low-rank ``rank``, banded precision ``radius``)."""

    latent_dim: int = field(default=32, metadata=bounds(1))
    width: int = field(default=16, metadata=bounds(1))
    rank: int = field(default=8, metadata=bounds(1))
    radius: int = field(default=2, metadata=bounds(0))
    covariances: list[COVARIANCES] = field(
        default_factory=lambda: ["identity", "diagonal", "lowrank", "precision"])

    def check(self, path: str) -> None:
        """At least one covariance head."""
        _non_empty_lists(self, path)


#: The VAE stages: ``mean_steps`` (mean model), ``cov_steps`` (each covariance head), minibatch
#: ``batch_size``, Adam ``lr`` (cosine to 5 %), KL weight ``beta`` -- one schema with the zoo
#: VAE recipe's.
TrainConfig = ZooTrain


@dataclass(frozen=True)
class Setting:
    """One (sampling rate, noise level) setting."""

    rate: float = field(default=0.25, metadata=RATE)
    noise: float = field(default=0.01, metadata=POSITIVE)


@dataclass(frozen=True)
class ProblemConfig:
    """MRI :math:`y=S(Fu+\\eta)`: sampling ``pattern`` (mask seeded by ``mask_seed``) at every
    rate of ``rates`` and every noise level of ``noise``; ``train_setting`` is the setting the
    weights are tuned and the end-to-end network is trained for."""

    pattern: str = "variable-density"
    rates: list[float] = field(default_factory=lambda: [0.15, 0.25, 0.4], metadata=RATE)
    noise: list[float] = field(default_factory=lambda: [0.01, 0.03], metadata=POSITIVE)
    train_setting: Setting = field(default_factory=Setting)
    mask_seed: int = field(default=0, metadata=bounds(0))

    def check(self, path: str) -> None:
        """Non-empty rates and noise levels."""
        _non_empty_lists(self, path)


@dataclass(frozen=True)
class ReconConfig:
    """Reconstruction with a generative regulariser (:mod:`spinv.generative.reconstruct`):
    ``method``, outer ``iterations``, latent steps ``z_steps`` of rate ``z_lr`` from
    ``n_inits`` starts, the weight of the log-determinant, CG steps of the image update."""

    method: Literal["alternating", "joint"] = "alternating"
    iterations: int = field(default=15, metadata=bounds(1))
    z_steps: int = field(default=5, metadata=bounds(1))
    z_lr: float = field(default=0.05, metadata=POSITIVE)
    n_inits: int = field(default=2, metadata=bounds(1))
    logdet_weight: float = field(default=1.0, metadata=bounds(0))
    cg_iterations: int = field(default=20, metadata=bounds(1))


@dataclass(frozen=True)
class TuningConfig:
    """Weight grids searched on the validation slices at the training setting: ``mean``
    (mean-only), ``covariance`` (every covariance head), ``range`` (range constraint), ``tv``."""

    mean: list[float] = field(default_factory=lambda: [3.0, 10.0, 30.0, 100.0],
                              metadata=POSITIVE)
    covariance: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.3, 1.0],
                                    metadata=POSITIVE)
    range: list[float] = field(default_factory=lambda: [0.1, 1.0, 10.0], metadata=POSITIVE)
    tv: list[float] = field(default_factory=lambda: [10.0, 30.0, 100.0, 300.0],
                            metadata=POSITIVE)

    def check(self, path: str) -> None:
        """Non-empty grids."""
        _non_empty_lists(self, path)


@dataclass(frozen=True)
class TVConfig:
    """TV baseline: PDHG ``iterations``."""

    iterations: int = field(default=200, metadata=bounds(1))


@dataclass(frozen=True)
class EndToEndConfig:
    """The end-to-end post-processing CNN (``width``, ``depth``), trained ``steps`` Adam steps
    (rate ``lr``, cosine to 5 %) on minibatches of ``batch_size`` at the training setting."""

    steps: int = field(default=800, metadata=bounds(1))
    batch_size: int = field(default=16, metadata=bounds(1))
    lr: float = field(default=1e-3, metadata=POSITIVE)
    width: int = field(default=32, metadata=bounds(1))
    depth: int = field(default=6, metadata=bounds(1))


@dataclass(frozen=True)
class GenerativeConfig:
    """The generative experiment (module docstring of
    :mod:`spinv.experiments.generative.experiment`); sections as in the module docstring."""

    name: str = "generative"
    seed: int = field(default=0, metadata=bounds(0))
    device: str = "cpu"
    num_threads: int = field(default=1, metadata=bounds(1))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    tv: TVConfig = field(default_factory=TVConfig)
    end_to_end: EndToEndConfig = field(default_factory=EndToEndConfig)
    models: str | None = None

    def check(self, path: str) -> None:
        """A valid ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
        from spinv.experiments.nonexpansive.config import resolve_device

        resolve_device(self.device, f"{path}.device" if path else "device")

    def to_dict(self) -> dict:
        """The config as ``results.json`` records it (``models`` only when given)."""
        record = dataclasses.asdict(self)
        if record["models"] is None:
            del record["models"]
        return record
