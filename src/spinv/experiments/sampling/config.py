"""Typed configs of the chapter-1 experiments (bilevel learning of MRI sampling patterns).

``learn`` reads one learning run, the flat mapping of
:class:`spinv.bilevel.config.SamplingConfig` (``configs/sampling-{smoke,small,paper}.yaml``):
:class:`SamplingRun` checks its keys and types with :mod:`spinv.typed_config` (an unknown key
or a wrong type names the key path) and then its ranges with ``SamplingConfig.validate``. The
sweeps (``configs/sampling-<experiment>.yaml``) hold a ``base`` section (a :class:`SamplingRun`)
and the keys of their dataclass below; each point of a sweep is one learning run with some
``base`` keys overridden.

>>> from spinv.experiments.sampling import BETA_SWEEP
>>> BETA_SWEEP.load({"base": {"size": 16}, "betas": [0.1]}).betas
[0.1]
>>> BETA_SWEEP.load({"base": {"size": 4}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config: config section 'base': size=4: expected an integer >= 8
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spinv.bilevel.config import SamplingConfig
from spinv.typed_config import bounds

__all__ = [
    "BetaSweepConfig",
    "DensityConfig",
    "LinesConfig",
    "RegularisersConfig",
    "SamplingRun",
    "TrainingSizeConfig",
    "learn_specs",
]

LOWER_LEVEL_REGULARISERS = ("tv", "wavelet", "h1", "none")
FALLBACK = {"tv": {"regulariser": "tv", "beta": 1e-2},
            "wavelet": {"regulariser": "wavelet", "beta": 1e-2}}


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass
class SamplingRun(SamplingConfig):
    """A :class:`~spinv.bilevel.config.SamplingConfig` read by :mod:`spinv.typed_config`
    (keys and types), its ranges checked by ``SamplingConfig.validate``."""

    def check(self, path: str) -> None:
        try:
            self.validate()
        except ValueError as err:
            raise ValueError(f"config section {path!r}: {err}" if path else str(err)) from None


@dataclass(frozen=True)
class BetaSweepConfig:
    """Fig. 1.5: one free-pattern learning run per sparsity weight in ``betas``."""

    base: SamplingRun = field(default_factory=SamplingRun)
    betas: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2, 3e-2],
                               metadata=bounds(0))


@dataclass(frozen=True)
class RegularisersConfig:
    """Table 1.1: one learning run per lower-level regulariser, ``{name: beta}``."""

    base: SamplingRun = field(default_factory=SamplingRun)
    regularisers: dict = field(default_factory=lambda: {"tv": 1e-2, "wavelet": 1e-2,
                                                        "h1": 1e-2})

    def check(self, path: str) -> None:
        for name, beta in self.regularisers.items():
            key = _key(path, f"regularisers.{name}")
            if name not in LOWER_LEVEL_REGULARISERS:
                raise ValueError(f"config key {key!r}: unknown regulariser; expected one of "
                                 f"{', '.join(LOWER_LEVEL_REGULARISERS)}")
            if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
                raise ValueError(f"config key {key!r}: got {beta!r}; expected a beta >= 0")


@dataclass(frozen=True)
class TrainingSizeConfig:
    """Fig. 1.11: one learning run per training-set size in ``n_train``."""

    base: SamplingRun = field(default_factory=SamplingRun)
    n_train: list[int] = field(default_factory=lambda: [1, 3, 5, 7], metadata=bounds(1))


@dataclass(frozen=True)
class LinesConfig:
    """Tables 1.3-1.4: learned lines at ``beta`` vs greedy and variable-density lines;
    ``direct_check`` also runs the thesis' direct learning (no continuation)."""

    base: SamplingRun = field(default_factory=SamplingRun)
    beta: float = field(default=1e-2, metadata=bounds(0))
    direct_check: bool = False


def learn_specs(learn: dict, path: str = "") -> dict[str, dict]:
    """``{label: {"regulariser", "beta"}}`` from the ``learn`` mapping of a density config
    (``{label: beta}`` takes the label as the regulariser's name)."""
    specs = {}
    for label, spec in learn.items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"regulariser": label, "beta": spec}
        if not isinstance(spec, dict) or set(spec) - {"regulariser", "beta"} or "beta" not in spec:
            raise ValueError(f"config key {_key(path, f'learn.{label}')!r}: got {spec!r}; "
                             "expected a beta or a mapping with 'beta' and optionally "
                             "'regulariser'")
        specs[str(label)] = {"regulariser": spec.get("regulariser", "tv"),
                             "beta": float(spec["beta"])}
    return specs


@dataclass(frozen=True)
class DensityConfig:
    """Figs. 1.6, 1.8: kernel densities of patterns from files (``patterns: {label: path}``)
    and/or learned from ``base`` (``learn``), grouped into ``figures: {name: [label, ...]}``;
    Gaussian ``bandwidth`` in pixels."""

    base: SamplingRun = field(default_factory=SamplingRun)
    patterns: dict = field(default_factory=dict)
    bandwidth: float = field(default=1.5, metadata=bounds(0, lo_open=True))
    learn: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)

    def learned(self, path: str = "") -> dict[str, dict]:
        """The patterns to learn (:func:`learn_specs`); with neither ``patterns`` nor
        ``learn``, a TV and a wavelet pattern at beta = 0.01."""
        return learn_specs(self.learn or ({} if self.patterns else FALLBACK), path)

    def check(self, path: str) -> None:
        labels = set(map(str, self.patterns)) | set(self.learned(path))
        for name, members in self.figures.items():
            if not isinstance(members, list) or not members or set(members) - labels:
                raise ValueError(f"config key {_key(path, f'figures.{name}')!r}: got "
                                 f"{members!r}; expected labels drawn from {sorted(labels)}")
