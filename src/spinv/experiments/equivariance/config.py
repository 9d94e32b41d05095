"""Typed configs of the equivariance experiments of thesis §2.5 (``sweep-n``, ``groups``,
``depth``).

A config file (``configs/equivariance-*.yaml``) holds one section per scale, ``small:`` (CPU
minutes) and/or ``paper:`` (the thesis' sizes, for a GPU), and optionally ``command`` and
``description`` (:mod:`spinv.experiments.protocol`). A section holds the keys of
:class:`EquivarianceConfig`; the three experiments share them and differ only in some defaults
(:class:`GroupsConfig`: validation split, Fig. 2.7; :class:`DepthConfig`: one C4 model on 50
slices). An unknown key, a wrong type or an out-of-range value is one ``ValueError`` naming the
key path (``small.width``) and the file.

>>> from spinv.experiments.equivariance import SWEEP_N
>>> cfg = SWEEP_N.load({"small": {"problem": "mri", "image_size": 32}})
>>> cfg.problem, cfg.image_size, cfg.groups, cfg.scale
('mri', 32, [None, 'C4'], 'small')
>>> SWEEP_N.load({"small": {"widht": 8}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config: config key 'small.widht': unknown key; allowed: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

from spinv.typed_config import bounds

__all__ = ["DepthConfig", "EquivarianceConfig", "GroupsConfig", "SweepNConfig", "TVTuning"]

POSITIVE = bounds(0, lo_open=True)


@dataclass(frozen=True)
class TVTuning:
    """The search for TV's :math:`\\alpha` (Eq. (1.3) with TV, solved by PDHG): mean PSNR on
    the first ``tune_images`` training slices over ``alpha_grid``, then ``golden_iterations``
    golden-section refinements, ``tune_iterations`` PDHG iterations per reconstruction."""

    tune_images: int
    alpha_grid: list
    golden_iterations: int
    tune_iterations: int


@dataclass(frozen=True)
class EquivarianceConfig:
    """Settings of the equivariance experiments (thesis §2.5); ``scale`` is set by the loader.

    Problem and data (§2.5.1): ``problem`` (``ct``: ct-head, low dose; ``mri``: brain-t1),
    ``image_size``, ``n_test`` held-out slices, CT ``n_angles``/``photons``, MRI
    ``rate``/``noise``. Model and training (§2.5.2): ``width`` (|H| x channels), ``iterations``,
    ``memory``, Adam ``steps``/``lr``/``batch_size``, ``clip_grad_norm``, ``bf16``, ``threads``,
    ``device``, ``seed``, ``eval_split``, ``checkpoint_every``. sweep-n (Figs 2.8, 2.10):
    ``n_train_values``, ``groups`` (null: ordinary, or C<m>/D<m>), ``baselines``. groups
    (Fig. 2.7): ``n_train``, ``orders``. depth (Fig. 2.12): ``total_iterations``, ``reuse``,
    ``pdhg_iterations``, ``n_show``; TV tuning: ``alpha_grid``, ``tune_images``,
    ``tune_iterations``, ``golden_iterations``.
    """

    problem: Literal["ct", "mri"] = "ct"
    image_size: int = field(default=64, metadata=bounds(8))
    n_test: int = field(default=8, metadata=bounds(1))
    n_angles: int = field(default=50, metadata=bounds(1))
    photons: float = field(default=1e4, metadata=POSITIVE)
    rate: float = field(default=0.2, metadata=POSITIVE)
    noise: float = field(default=0.02, metadata=bounds(0))
    width: int = field(default=32, metadata=bounds(1))
    iterations: int = field(default=8, metadata=bounds(1))
    memory: int = field(default=5, metadata=bounds(0))
    steps: int = field(default=300, metadata=bounds(1))
    lr: float = field(default=5e-4, metadata=POSITIVE)
    batch_size: int = field(default=1, metadata=bounds(1))
    clip_grad_norm: float | None = field(default=1.0, metadata=POSITIVE)
    bf16: bool = False
    threads: int | None = field(default=None, metadata=bounds(1))
    device: str = "auto"
    seed: int = field(default=0, metadata=bounds(0))
    eval_split: Literal["test", "val"] = "test"
    checkpoint_every: int | None = field(default=None, metadata=bounds(1))
    n_train_values: list[int] = field(default_factory=lambda: [10, 20, 50, 100],
                                      metadata=bounds(1))
    groups: list[str | None] = field(default_factory=lambda: [None, "C4"])
    baselines: bool = True
    n_train: int = field(default=100, metadata=bounds(1))
    orders: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6, 8], metadata=bounds(1))
    total_iterations: int = field(default=40, metadata=bounds(1))
    reuse: Literal["cycle", "last"] = "cycle"
    pdhg_iterations: int | None = field(default=None, metadata=bounds(1))
    alpha_grid: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                                    metadata=POSITIVE)
    tune_images: int = field(default=4, metadata=bounds(1))
    tune_iterations: int = field(default=300, metadata=bounds(1))
    golden_iterations: int = field(default=4, metadata=bounds(0))
    n_show: int = field(default=4, metadata=bounds(1))
    scale: Literal["small", "paper"] | None = None

    def check(self, path: str) -> None:
        """Cross-field checks: finite numbers, non-empty lists, valid groups, MRI rate <= 1."""
        from spinv.nn.groups import parse_group

        def key(name: str) -> str:
            return f"{path}.{name}" if path else name

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"config key {key(f.name)!r}: got {value!r}; expected a "
                                 "finite number")
            if isinstance(value, list) and not value:
                raise ValueError(f"config key {key(f.name)!r}: expected a non-empty list")
        for i, group in enumerate(self.groups):
            try:
                if group is not None:
                    parse_group(group)
            except (TypeError, ValueError):
                name = f"{key('groups')}[{i}]"
                raise ValueError(f"config key {name!r}: got {group!r}; expected "
                                 "null (ordinary) or 'C<m>'/'D<m>' with m >= 1") from None
        if self.problem == "mri" and not self.rate <= 1:
            raise ValueError(f"config key {key('rate')!r}: got {self.rate!r}; expected a "
                             "sampling rate in (0, 1]")

    def tv_tuning(self) -> TVTuning:
        """The TV :math:`\\alpha` search of these settings."""
        return TVTuning(self.tune_images, self.alpha_grid, self.golden_iterations,
                        self.tune_iterations)


@dataclass(frozen=True)
class SweepNConfig(EquivarianceConfig):
    """``sweep-n``: the defaults of :class:`EquivarianceConfig`."""


@dataclass(frozen=True)
class GroupsConfig(EquivarianceConfig):
    """``groups``: measured on the validation split (Fig. 2.7)."""

    eval_split: Literal["test", "val"] = "val"


@dataclass(frozen=True)
class DepthConfig(EquivarianceConfig):
    """``depth``: one C4 model on 50 training slices, 4 test slices (Fig. 2.12)."""

    groups: list[str | None] = field(default_factory=lambda: ["C4"])
    n_train: int = field(default=50, metadata=bounds(1))
    n_test: int = field(default=4, metadata=bounds(1))
