"""Typed configs of the chapter-3 experiments (``toy``, ``denoise``, ``pnp``).

A config file (``configs/nonexpansive-*.yaml``) holds an optional ``description`` and one
section per experiment: ``toy:`` (Fig. 3.1), ``denoise:`` (Fig. 3.2, Table 3.1) and ``pnp:``
(Algorithm 6 and PnP-ADMM on held-out CT / MRI slices); each experiment reads its own section
(:attr:`spinv.experiments.protocol.Experiment.sections`) into :class:`ToyConfig`,
:class:`DenoiseConfig` or :class:`PnPConfig`; missing keys take their defaults. An unknown key,
a wrong type or an out-of-range value is one ``ValueError`` naming the key path
(``denoise.steps``) and the file.

>>> from spinv.experiments.nonexpansive import DENOISE, TOY
>>> cfg = DENOISE.load({"denoise": {"steps": 10, "gammas": [1.99]}})
>>> cfg.steps, cfg.gammas, cfg.sigma
(10, [1.99], 0.5)
>>> TOY.load({"toy": {"stpes": 3}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config: config key 'toy.stpes': unknown key; allowed: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch

from spinv.typed_config import bounds

__all__ = ["DenoiseConfig", "DenoiserTrainingKeys", "Machine", "PnPConfig", "ToyConfig",
           "resolve_device", "settings_record", "setup_device"]

POSITIVE = bounds(0, lo_open=True)
MASKS = Literal["lines", "variable-density", "random", "equispaced-lines", "low-pass", "radial"]


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_lists_and_device(obj, path: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, list) and not value:
            raise ValueError(f"config key {_key(path, f.name)!r}: expected a non-empty list")
        if f.name == "device":
            resolve_device(value, _key(path, f.name))


def _at_most(obj, path: str, name: str, limit: float, strict: bool) -> None:
    value = getattr(obj, name)
    worst = max(value) if isinstance(value, list) else value
    if worst > limit or (strict and worst == limit):
        raise ValueError(f"config key {_key(path, name)!r}: got {value!r}; expected "
                         f"{'values' if isinstance(value, list) else 'a value'} in "
                         f"(0, {limit:g}{')' if strict else ']'}")


@dataclass(frozen=True)
class Machine:
    """Where an experiment runs: ``seed`` (data, noise, weights, minibatches), torch
    ``threads`` (``None``: leave as is) and ``device`` (``auto``, ``cpu``, ``cuda:N``)."""

    seed: int = field(default=0, metadata=bounds(0))
    threads: int | None = field(default=None, metadata=bounds(1))
    device: str = "auto"


@dataclass(frozen=True)
class ToyConfig(Machine):
    """Fig. 3.1: ``n_points`` random points in [-1, 1], ``steps`` Adam steps (rate ``lr``)
    per network; both ResNets have ``depth`` layers, :math:`A_i` with ``hidden`` rows, and
    Algorithm 7's step ``step`` (the thesis: 6 points, it = 10, 10 rows, h = 2)."""

    n_points: int = field(default=6, metadata=bounds(1))
    steps: int = field(default=2000, metadata=bounds(1))
    lr: float = field(default=1e-2, metadata=POSITIVE)
    depth: int = field(default=10, metadata=bounds(1))
    hidden: int = field(default=10, metadata=bounds(1))
    step: float = field(default=2.0, metadata=POSITIVE)

    def check(self, path: str) -> None:
        """The device must be valid."""
        _check_lists_and_device(self, path)


@dataclass(frozen=True)
class DenoiserTrainingKeys(Machine):
    """Keys shared by ``denoise`` and ``pnp``: the training of the denoisers (Adam, rate
    ``lr`` with ``lr_schedule``, ``batch_size`` random ``crop x crop`` crops), the
    nonexpansive network's ``width``/``depth`` and the DnCNN's ``dncnn_width`` (``None``:
    ``width``), ``dncnn_depth`` and ``dncnn_batch_norm``."""

    width: int = field(default=16, metadata=bounds(1))
    depth: int = field(default=10, metadata=bounds(1))
    include_dncnn: bool = True
    dncnn_width: int | None = field(default=None, metadata=bounds(1))
    dncnn_depth: int = field(default=20, metadata=bounds(1))
    dncnn_batch_norm: bool = True
    crop: int = field(default=32, metadata=bounds(1))
    batch_size: int = field(default=5, metadata=bounds(1))
    lr: float = field(default=1e-3, metadata=POSITIVE)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    include_tv: bool = True

    @property
    def dncnn_width_resolved(self) -> int:
        """``dncnn_width``, or ``width`` when it is ``None``."""
        return self.width if self.dncnn_width is None else self.dncnn_width


@dataclass(frozen=True)
class DenoiseConfig(DenoiserTrainingKeys):
    """Fig. 3.2 / Table 3.1: Gaussian noise ``sigma`` on the ``natural`` images; ``steps``
    Adam steps per network (0: untrained); Euler networks for every ``gammas`` value
    (Eqs. 3.5/3.6), residual and/or plain (``residual``), the ``higher_order`` methods
    residually with the last gamma, step ``step``; DnCNN and TV baselines (TV:
    ``tv_iterations`` dual FISTA iterations, alpha tuned on ``tv_tune_crops`` training
    crops). Test images: the first ``n_test`` (``None``: all), centre crops of
    ``test_size`` (``None``: full size)."""

    sigma: float = field(default=0.5, metadata=POSITIVE)
    steps: int = field(default=300, metadata=bounds(0))
    step: float = field(default=2.0, metadata=POSITIVE)
    gammas: list[float] = field(default_factory=lambda: [1.0, 1.5, 1.99], metadata=POSITIVE)
    residual: list[bool] = field(default_factory=lambda: [True, False])
    higher_order: list[Literal["heun", "rk4"]] = field(default_factory=lambda: ["heun", "rk4"])
    tv_iterations: int = field(default=200, metadata=bounds(1))
    tv_tune_crops: int = field(default=8, metadata=bounds(1))
    test_size: int | None = field(default=128, metadata=bounds(1))
    n_test: int | None = field(default=None, metadata=bounds(1))

    def check(self, path: str) -> None:
        """Non-empty lists, a valid device."""
        _check_lists_and_device(self, path)

    def training(self):
        """The settings of :func:`~.denoiser_training.train_denoiser` for every network."""
        from spinv.experiments.nonexpansive.denoiser_training import DenoiserTraining

        return DenoiserTraining(self.sigma, self.steps, self.batch_size, self.crop, self.lr,
                                self.seed, self.lr_schedule)


@dataclass(frozen=True)
class PnPConfig(DenoiserTrainingKeys):
    """PnP on held-out slices (module docstring of :mod:`.pnp`).

    Problem: ``problem`` (``ct``: ct-head, low dose, ``n_angles`` views, ``photons``;
    ``mri``: brain-t1, ``mask`` at ``rate`` with complex ``noise``), ``dataset`` (``None``:
    the problem's), ``image_size``, ``n_val`` validation and ``n_test`` test slices (``None``:
    all), ``show_index`` (the slice of the figure). PnP-PGD (Algorithm 6): ``iterations`` from
    ``init``, grids ``weights`` (lambda of :math:`(1-\\lambda)\\mathrm{id}+\\lambda\\Phi`) and
    ``step_factors`` (c, step :math:`c/\\|A\\|^2`). PnP-ADMM (``include_admm``):
    ``admm_iterations``, ``cg_iterations``, grids ``admm_rhos`` (r, :math:`\\rho=r\\|A\\|^2`)
    and ``admm_weights``. TV: ``tv_iterations``, ``tv_grid`` refined ``tv_refine`` times.
    Denoisers: one averaged (tied, alpha = 0.5, residual, ``method``, ``gamma`` < 2) and one
    DnCNN per ``denoiser_sigmas`` value, ``train_steps`` steps each, or the trained
    ``denoiser`` run directory instead of the averaged one.
    """

    problem: Literal["ct", "mri"] = "ct"
    dataset: str | None = None
    image_size: int = field(default=64, metadata=bounds(1))
    n_val: int = field(default=4, metadata=bounds(1))
    n_test: int | None = field(default=None, metadata=bounds(1))
    show_index: int = field(default=0, metadata=bounds(0))
    n_angles: int = field(default=50, metadata=bounds(1))
    photons: float | None = field(default=1e4, metadata=POSITIVE)
    mask: MASKS = "lines"
    rate: float = field(default=0.25, metadata=POSITIVE)
    noise: float = field(default=0.02, metadata=bounds(0))
    iterations: int = field(default=100, metadata=bounds(1))
    init: Literal["analytic", "adjoint", "zeros"] = "analytic"
    weights: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.4, 0.7, 1.0],
                                 metadata=POSITIVE)
    step_factors: list[float] = field(default_factory=lambda: [1.0], metadata=POSITIVE)
    include_admm: bool = True
    admm_iterations: int = field(default=50, metadata=bounds(1))
    cg_iterations: int = field(default=20, metadata=bounds(1))
    admm_rhos: list[float] = field(default_factory=lambda: [0.03, 0.1, 0.3, 1.0],
                                   metadata=POSITIVE)
    admm_weights: list[float] = field(default_factory=lambda: [0.5], metadata=POSITIVE)
    tv_iterations: int = field(default=300, metadata=bounds(1))
    tv_grid: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
                                 metadata=POSITIVE)
    tv_refine: int = field(default=6, metadata=bounds(0))
    denoiser_sigmas: list[float] = field(default_factory=lambda: [0.05], metadata=POSITIVE)
    train_steps: int = field(default=300, metadata=bounds(0))
    method: Literal["euler", "heun", "rk4"] = "euler"
    gamma: float = field(default=1.99, metadata=POSITIVE)
    dncnn_depth: int = field(default=17, metadata=bounds(1))
    dncnn_batch_norm: bool = False
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    denoiser: str | None = None

    def check(self, path: str) -> None:
        """Non-empty lists, a valid device, gamma < 2 (averaged), weights in (0, 1], step
        factors in (0, 2), an MRI rate in (0, 1]."""
        _check_lists_and_device(self, path)
        _at_most(self, path, "gamma", 2.0, strict=True)
        _at_most(self, path, "weights", 1.0, strict=False)
        _at_most(self, path, "admm_weights", 1.0, strict=False)
        _at_most(self, path, "step_factors", 2.0, strict=True)
        _at_most(self, path, "rate", 1.0, strict=False)

    @property
    def dataset_name(self) -> str:
        """``dataset``, or the problem's (ct-head for CT, brain-t1 for MRI)."""
        return self.dataset or {"ct": "ct-head", "mri": "brain-t1"}[self.problem]


def settings_record(config) -> dict:
    """The config as the results record it (``settings``/``config`` of ``results.json``):
    every key, except ``denoiser`` when no denoiser run is given."""
    record = dataclasses.asdict(config)
    if record.get("denoiser", "") is None:
        del record["denoiser"]
    return record


def resolve_device(name: str, key: str = "device") -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"config key {key!r}: got {name!r}; expected auto, cpu, cuda, "
                         "cuda:N") from None


def setup_device(config: Machine) -> torch.device:
    """Apply ``config.threads`` (torch intra-op threads) and return the device of
    ``config.device``."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    return resolve_device(config.device)
