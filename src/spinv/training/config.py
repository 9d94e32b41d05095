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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from spinv.typed_config import apply_overrides as apply_mapping_overrides
from spinv.typed_config import bounds, build, read_yaml

MASK_PATTERNS_FALLBACK = (
    "random", "variable-density", "lines", "equispaced-lines", "low-pass", "radial"
)


_rng = bounds


@dataclass(frozen=True)
class MaskConfig:
    """k-space sampling mask of the MRI problem: ``spinv.operators.sampling`` pattern, rate and
    seed."""

    pattern: str = "variable-density"
    rate: float = field(default=0.25, metadata=_rng(0.0, 1.0, lo_open=True))
    seed: int = field(default=0, metadata=_rng(0))

    def check(self, path: str) -> None:
        """The pattern is a name of :data:`spinv.operators.sampling.PATTERNS`."""
        try:
            from spinv.operators.sampling import PATTERNS  # type: ignore[attr-defined]

            names = tuple(PATTERNS)
        except (ImportError, AttributeError):
            names = MASK_PATTERNS_FALLBACK
        if self.pattern not in names:
            raise ValueError(
                f"config key '{path}.pattern': got {self.pattern!r}; expected one of "
                f"{', '.join(names)}"
            )


@dataclass(frozen=True)
class FanConfig:
    """Fan-beam CT (:class:`spinv.operators.ct_fan.FanBeamCT`, a full 360-degree scan):
    ``source_distance`` source to isocentre in pixels (null: twice the image size),
    ``detector_distance`` source to detector (null: twice the source distance),
    ``detector_type`` ``equiangular`` (curved) or ``flat``."""

    source_distance: float | None = field(default=None, metadata=_rng(0.0, lo_open=True))
    detector_distance: float | None = field(default=None, metadata=_rng(0.0, lo_open=True))
    detector_type: Literal["equiangular", "flat"] = "equiangular"


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
    1 projects with the model's own operator). ``fan`` (CT): a :class:`FanConfig` for fan-beam
    CT (``fan: {}`` takes its defaults); null: parallel beams. ``coils`` (MRI): that many
    simulated birdcage receive coils (SENSE, :class:`~spinv.operators.MultiCoilFourier`,
    noise ``noise_sigma`` per coil); null: single coil.
    """

    kind: Literal["ct", "mri", "denoise"] = "denoise"
    image_size: int = field(default=32, metadata=_rng(8, 4096))
    n_angles: int = field(default=50, metadata=_rng(1))
    photons: float | None = field(default=10000.0, metadata=_rng(0.0, lo_open=True))
    mu: float | None = field(default=None, metadata=_rng(0.0, lo_open=True))
    mask: MaskConfig = field(default_factory=MaskConfig)
    noise_sigma: float = field(default=0.1, metadata=_rng(0.0))
    upsample: int = field(default=1, metadata=_rng(1, 8))
    fan: FanConfig | None = None
    coils: int | None = field(default=None, metadata=_rng(1, 64))


@dataclass(frozen=True)
class DataConfig:
    """Ground truth: bundled dataset name (``ct-head``, ``brain-t1``, ``natural``) or a path.

    ``n_train``: training-set size :math:`N` (null: all training images), ``rotate_train``:
    apply a random rotation to each training sample, ``val_size``: fixed validation images,
    ``resize``: how images are brought to ``image_size`` (antialiased ``bilinear``, or ``area``
    averaging as in the chapter-2 experiments), ``zoom_train``: shrink each training sample
    about the centre by a factor drawn uniformly from ``[zoom_train, 1]`` and pad with zeros
    (air), so the model also sees smaller cross-sections (null: off).
    """

    dataset: str = "natural"
    n_train: int | None = field(default=None, metadata=_rng(1))
    rotate_train: bool = False
    zoom_train: float | None = field(default=None, metadata=_rng(0.0, 1.0, lo_open=True))
    val_size: int = field(default=4, metadata=_rng(0))
    resize: Literal["bilinear", "area"] = "bilinear"


@dataclass(frozen=True)
class ModelConfig:
    """Registered model name (see :func:`spinv.training.registry.available_models`) and options."""

    name: str = "postprocess-cnn"
    options: dict = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> ModelConfig:
        """``{name: ..., <free options of the model>}`` (or ``{name, options: {...}}``)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"config section {path!r}: got {data!r}; expected a mapping of "
                             "keys to values")
        data = dict(data)
        name = data.pop("name", cls.name)
        if "options" in data and len(data) == 1 and isinstance(data["options"], dict):
            data = data["options"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"config key 'model.name': got {name!r}; expected a model name")
        for k in data:
            if not isinstance(k, str):
                raise ValueError(f"config key 'model.{k}': option names must be strings")
        return cls(name=name, options=dict(data))


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

    def check(self, path: str) -> None:
        """A known device, and a cosine floor no higher than the learning rate."""
        dev = self.device
        ok = dev in ("auto", "cpu", "cuda", "mps") or (
            dev.startswith("cuda:") and dev[5:].isdigit()
        )
        if not ok:
            raise ValueError(
                f"config key '{path}.device': got {dev!r}; expected auto, cpu, cuda, cuda:N or mps"
            )
        if self.lr_min > self.lr:
            raise ValueError(
                f"config key '{path}.lr_min': value {self.lr_min!r} is out of range; expected a "
                f"number <= {path}.lr = {self.lr!r} (the floor of the cosine schedule)"
            )


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

    def check(self, path: str) -> None:
        """``rotate`` is ``none``, ``random`` or an angle."""
        parse_rotation(self.rotate, f"{path}.rotate")


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
        for key in ("fan", "coils"):  # parallel beams, single coil: the dicts of before
            if d["problem"][key] is None:
                del d["problem"][key]
        return d

    def replace(self, section: str, **changes: Any) -> ExperimentConfig:
        """A copy with ``section.key = value`` for each change, re-validated."""
        d = self.to_dict()
        if section not in d or not isinstance(d[section], dict):
            raise ValueError(f"config section {section!r} does not exist")
        d[section].update(changes)
        return parse_config(d)


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
    for item in overrides:
        key, sep, _ = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(
                f"override {item!r}: expected section.key=value, e.g. train.lr=1e-4"
            )
        node = cfg.to_dict()
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise ValueError(
                    f"override {item!r}: config key {'.'.join(parts[: i + 1])!r} is not a "
                    "section"
                )
            node = node[part]
    d = apply_mapping_overrides(cfg.to_dict(), overrides)
    return parse_config(d)


def parse_config(data: Any) -> ExperimentConfig:
    """Validate a mapping (e.g. parsed YAML) into an :class:`ExperimentConfig`."""
    return build(ExperimentConfig, data, "")


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read and validate a YAML experiment file; errors name the file."""
    p = Path(path)
    data = read_yaml(p)
    try:
        cfg = parse_config(data)
    except ValueError as err:
        raise ValueError(f"{p}: {err}") from None
    if "name" not in data:
        cfg = dataclasses.replace(cfg, name=p.stem)
    return cfg
