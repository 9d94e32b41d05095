"""Experiment configurations: YAML files validated into typed, frozen dataclasses.

An experiment is the supervised learning problem of Section 2.5.2 of the thesis,
:math:`\\min_\\theta \\frac1N\\sum_{i=1}^N \\|u_i^* - \\Phi_\\theta(y_i)\\|_2^2`, specified by

- ``problem``: the forward model and noise producing :math:`y_i` from :math:`u_i^*`
  (``ct``: low-dose post-log parallel-beam CT, Section 2.5.1; ``mri``: subsampled Fourier with
  complex Gaussian noise :math:`y = SFu + \\varepsilon`; ``denoise``: :math:`y = u + \\varepsilon`);
- ``data``: which ground-truth images, the training-set size :math:`N` and validation size;
- ``model``: a name of :mod:`spinv.training.registry` plus free options for its factory;
- ``train``: the optimiser loop (Adam, Section 2.5.2), seeding, checkpointing and logging;
- ``eval``: how :mod:`spinv.cli.train_cmd` ``evaluate`` measures a trained model.

Every section is checked: an unknown key, a wrong type or an out-of-range value raises
``ValueError`` naming the key path (``train.lr``), the value and what is allowed.

>>> cfg = parse_config({"problem": {"kind": "denoise", "image_size": 16},
...                     "model": {"name": "postprocess-cnn", "width": 4}})
>>> cfg.problem.noise_sigma, cfg.train.batch_size, cfg.model.options
(0.1, 4, {'width': 4})
>>> parse_config({"train": {"lr": -1}})
Traceback (most recent call last):
...
ValueError: config key 'train.lr': value -1.0 is out of range; expected a number > 0
>>> parse_config({"train": {"stepz": 3}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config key 'train.stepz': unknown key; allowed: batch_size, checkpoint_every, ...
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

MASK_PATTERNS_FALLBACK = (
    "random", "variable-density", "lines", "equispaced-lines", "low-pass", "radial"
)


def _rng(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


@dataclass(frozen=True)
class MaskConfig:
    """k-space sampling mask of the MRI problem: ``spinv.sampling`` pattern, rate and seed."""

    pattern: str = "variable-density"
    rate: float = field(default=0.25, metadata=_rng(0.0, 1.0, lo_open=True))
    seed: int = field(default=0, metadata=_rng(0))


@dataclass(frozen=True)
class ProblemConfig:
    """Forward model and noise.

    ``ct``: parallel-beam ray transform with ``n_angles`` views on ``[0, pi)``, low-dose post-log
    data :math:`y = -\\mu^{-1}\\log\\max\\{n/N_{in}, \\eta\\}`, :math:`n \\sim
    \\mathrm{Pois}(N_{in} e^{-\\mu R u})` with ``photons`` :math:`= N_{in}` (null: noiseless) and
    ``mu`` (null: :func:`spinv.operators.noise.default_mu` of the image size).
    ``mri``: :math:`y = SFu + \\varepsilon`, complex Gaussian :math:`\\varepsilon` of standard
    deviation ``noise_sigma``; ``denoise``: :math:`y = u + \\varepsilon`, Gaussian.
    ``upsample`` (CT): project on a grid that many times finer than the reconstruction grid
    (:func:`spinv.operators.ct.simulate_ct`; 2 avoids the inverse crime as in thesis §2.5.1,
    1 projects with the model's own operator).
    """

    kind: Literal["ct", "mri", "denoise"] = "denoise"
    image_size: int = field(default=32, metadata=_rng(8, 4096))
    n_angles: int = field(default=50, metadata=_rng(1))
    photons: float | None = field(default=10000.0, metadata=_rng(0.0, lo_open=True))
    mu: float | None = field(default=None, metadata=_rng(0.0, lo_open=True))
    mask: MaskConfig = field(default_factory=MaskConfig)
    noise_sigma: float = field(default=0.1, metadata=_rng(0.0))
    upsample: int = field(default=1, metadata=_rng(1, 8))


@dataclass(frozen=True)
class DataConfig:
    """Ground truth: bundled dataset name (``ct-head``, ``brain-t1``, ``natural``) or a path.

    ``n_train``: training-set size :math:`N` (null: all training images), ``rotate_train``:
    apply a random rotation to each training sample, ``val_size``: fixed validation images,
    ``resize``: how images are brought to ``image_size`` (antialiased ``bilinear``, or ``area``
    averaging as in the chapter-2 experiments).
    """

    dataset: str = "natural"
    n_train: int | None = field(default=None, metadata=_rng(1))
    rotate_train: bool = False
    val_size: int = field(default=4, metadata=_rng(0))
    resize: Literal["bilinear", "area"] = "bilinear"


@dataclass(frozen=True)
class ModelConfig:
    """Registered model name (see :func:`spinv.training.registry.available_models`) and options."""

    name: str = "postprocess-cnn"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam (:math:`\\beta = (0.9, 0.999)`, :math:`\\epsilon = 10^{-8}`, Section
    2.5.2) for ``steps`` steps on minibatches of ``batch_size`` with learning rate ``lr`` and a
    ``constant``/``cosine``/``cosine-torch``/``step`` schedule (:mod:`spinv.training.schedules`;
    ``lr_min``: the cosine floor); checkpoints every ``checkpoint_every`` steps, TensorBoard
    scalars every ``log_every`` steps; ``device``: ``auto``/``cpu``/``cuda``/``cuda:N``/``mps``;
    ``num_threads``: torch intra-op threads (null: leave as is); ``grad_clip``: gradient-norm
    clipping; ``precision``: ``float32`` or ``bf16`` (autocast of the model's forward pass)."""

    steps: int = field(default=100, metadata=_rng(1))
    batch_size: int = field(default=4, metadata=_rng(1))
    lr: float = field(default=1e-3, metadata=_rng(0.0, lo_open=True))
    lr_schedule: Literal["constant", "cosine", "cosine-torch", "step"] = "constant"
    lr_min: float = field(default=0.0, metadata=_rng(0.0))
    seed: int = field(default=0, metadata=_rng(0))
    checkpoint_every: int = field(default=50, metadata=_rng(1))
    log_every: int = field(default=10, metadata=_rng(1))
    device: str = "auto"
    num_threads: int | None = field(default=None, metadata=_rng(1))
    grad_clip: float | None = field(default=None, metadata=_rng(0.0, lo_open=True))
    tensorboard: bool = False
    precision: Literal["float32", "bf16"] = "float32"


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation defaults: ``split``, number of images (null: all), rotation
    (``none``/``random``/degrees), ROI-masked metrics, number of example figures, seed."""

    split: Literal["train", "val", "test"] = "test"
    n_images: int | None = field(default=None, metadata=_rng(1))
    rotate: str = "none"
    roi: bool = False
    n_examples: int = field(default=4, metadata=_rng(0))
    seed: int = field(default=1234, metadata=_rng(0))
    batch_size: int = field(default=8, metadata=_rng(1))


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment (see the module docstring)."""

    name: str = "experiment"
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        """Plain-data form (round-trips through :func:`parse_config` and JSON/YAML)."""
        d = dataclasses.asdict(self)
        d["model"] = {"name": self.model.name, **self.model.options}
        return d

    def replace(self, section: str, **changes: Any) -> ExperimentConfig:
        """A copy with ``section.key = value`` for each change, re-validated."""
        d = self.to_dict()
        if section not in d or not isinstance(d[section], dict):
            raise ValueError(f"config section {section!r} does not exist")
        d[section].update(changes)
        return parse_config(d)


# ----------------------------------------------------------------------------- validation


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts) + " or null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping"}.get(tp, str(tp))


def _range_text(meta: dict) -> str:
    parts = []
    if meta.get("lo") is not None:
        parts.append(f"{'>' if meta['lo_open'] else '>='} {meta['lo']:g}")
    if meta.get("hi") is not None:
        parts.append(f"{'<' if meta['hi_open'] else '<='} {meta['hi']:g}")
    return " and ".join(parts)


def _check_value(value: Any, tp: Any, path: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            try:
                return _check_value(value, inner[0], path, meta)
            except ValueError as err:
                if "out of range" in str(err):
                    raise
                raise ValueError(
                    f"config key {path!r}: got {value!r}; expected {_describe(tp)}"
                ) from None
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or isinstance(value, bool):
            raise ValueError(
                f"config key {path!r}: got {value!r}; expected {_describe(tp)}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    bad = ValueError(f"config key {path!r}: got {value!r}; expected {_describe(tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise bad
    elif tp is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if meta and isinstance(value, (int, float)):
        lo, hi = meta.get("lo"), meta.get("hi")
        if (
            (lo is not None and (value <= lo if meta["lo_open"] else value < lo))
            or (hi is not None and (value >= hi if meta["hi_open"] else value > hi))
        ):
            raise ValueError(
                f"config key {path!r}: value {value!r} is out of range; expected "
                f"{'an integer' if tp is int else 'a number'} {_range_text(meta)}"
            )
    return value


def _build(cls: type, data: Any, path: str) -> Any:
    where = f"config section {path!r}" if path else "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: got {data!r}; expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is ModelConfig:
        data = dict(data)
        name = data.pop("name", ModelConfig.name)
        if "options" in data and len(data) == 1 and isinstance(data["options"], dict):
            data = data["options"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"config key 'model.name': got {name!r}; expected a model name")
        for k in data:
            if not isinstance(k, str):
                raise ValueError(f"config key 'model.{k}': option names must be strings")
        return ModelConfig(name=name, options=dict(data))
    kwargs = {}
    for key, value in data.items():
        kpath = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ValueError(
                f"config key {kpath!r}: unknown key; allowed: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _check_value(value, hints[key], kpath, dict(fields[key].metadata))
    obj = cls(**kwargs)
    _cross_check(obj, path)
    return obj


def _cross_check(obj: Any, path: str) -> None:
    if isinstance(obj, MaskConfig):
        try:
            from spinv.sampling import PATTERNS  # type: ignore[attr-defined]

            names = tuple(PATTERNS)
        except (ImportError, AttributeError):
            names = MASK_PATTERNS_FALLBACK
        if obj.pattern not in names:
            raise ValueError(
                f"config key '{path}.pattern': got {obj.pattern!r}; expected one of "
                f"{', '.join(names)}"
            )
    if isinstance(obj, TrainConfig):
        dev = obj.device
        ok = dev in ("auto", "cpu", "cuda", "mps") or (
            dev.startswith("cuda:") and dev[5:].isdigit()
        )
        if not ok:
            raise ValueError(
                f"config key '{path}.device': got {dev!r}; expected auto, cpu, cuda, cuda:N or mps"
            )
        if obj.lr_min > obj.lr:
            raise ValueError(
                f"config key '{path}.lr_min': value {obj.lr_min!r} is out of range; expected a "
                f"number <= {path}.lr = {obj.lr!r} (the floor of the cosine schedule)"
            )
    if isinstance(obj, EvalConfig):
        parse_rotation(obj.rotate, f"{path}.rotate")


def parse_rotation(value: Any, name: str = "rotate") -> str | float | None:
    """``"none"`` -> ``None``, ``"random"`` -> ``"random"``, ``"30"``/``30`` -> ``30.0`` degrees.

    >>> parse_rotation("none"), parse_rotation("random"), parse_rotation("45")
    (None, 'random', 45.0)
    """
    if value is None or value == "none":
        return None
    if value == "random":
        return "random"
    try:
        deg = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={value!r}: expected 'none', 'random' or an angle in degrees"
        ) from None
    if deg != deg or abs(deg) == float("inf"):
        raise ValueError(f"{name}={value!r}: expected a finite angle in degrees")
    return deg


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``section.key=value`` overrides (values parsed as YAML) and re-validate, e.g. for
    a sweep over the training-set size: ``["data.n_train=50", "train.seed=2"]``.

    >>> cfg = apply_overrides(parse_config({}), ["data.n_train=50", "problem.mask.rate=0.2"])
    >>> cfg.data.n_train, cfg.problem.mask.rate
    (50, 0.2)
    """
    d = cfg.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(
                f"override {item!r}: expected section.key=value, e.g. train.lr=1e-4"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: value is not valid YAML: {err}") from None
        node = d
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise ValueError(
                    f"override {item!r}: config key {'.'.join(parts[: i + 1])!r} is not a "
                    "section"
                )
            node = node[part]
        node[parts[-1]] = value
    return parse_config(d)


def parse_config(data: Any) -> ExperimentConfig:
    """Validate a mapping (e.g. parsed YAML) into an :class:`ExperimentConfig`."""
    return _build(ExperimentConfig, data, "")


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read and validate a YAML experiment file; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(p)!r} is not valid YAML: {err}") from None
    try:
        cfg = parse_config(data)
    except ValueError as err:
        raise ValueError(f"{p}: {err}") from None
    if data is not None and "name" not in data:
        cfg = dataclasses.replace(cfg, name=p.stem)
    return cfg
