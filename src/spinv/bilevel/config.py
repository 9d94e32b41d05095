"""Typed YAML configuration of a sampling-learning run (``spinv sampling learn CONFIG``).

A flat dataclass; unknown keys are rejected with a message naming them, and every value is
checked for type and range. Example (``configs/sampling-smoke.yaml``)::

    data: brain-t1       # bundled dataset name or a .npy/.npz file (N, H, W)
    size: 32             # images are area-downsampled to size x size
    n_train: 3
    parametrisation: free   # free | lines | fixed
    beta: 1.0e-3

>>> cfg = SamplingConfig.from_dict({"size": 32, "beta": 0.01})
>>> cfg.size, cfg.beta, cfg.regulariser
(32, 0.01, 'tv')
>>> SamplingConfig.from_dict({"sise": 32})
Traceback (most recent call last):
...
ValueError: unknown config key(s) ['sise']; allowed: alpha0, alpha_maxiter, baselines, beta, ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from spinv.bilevel.lower_level import REGULARISERS

__all__ = ["SamplingConfig", "load_config", "BASELINES"]

BASELINES = (
    "uniform_random",
    "variable_density",
    "low_pass",
    "variable_density_lines",
    "knoll",
    "gozcu",
)


@dataclass
class SamplingConfig:
    """Settings of one learning run; see the module docstring for the YAML form."""

    data: str = "brain-t1"
    size: int = 64
    n_train: int = 7
    n_test: int | None = None
    noise: float = 0.02
    regulariser: str = "tv"
    gamma: float = 0.01
    eps: float = 0.01
    parametrisation: str = "free"
    line_axis: int = 1
    line_weights: str = "amplitude"  # amplitude (thesis) | power (see CartesianLines)
    fixed_pattern: str = "variable_density"
    fixed_rate: float = 0.25
    beta: float = 1e-3
    beta_continuation: list | None = None  # e.g. [0.125, 0.25, 0.5, 1.0]: stages beta * f
    alpha0: float = 1e-3
    maxiter: int = 100
    alpha_maxiter: int = 15
    solver: str = "newton"
    tol: float = 1e-6
    cg_tol: float = 1e-6
    threshold: float = 0.0
    baselines: list = field(
        default_factory=lambda: [
            "uniform_random",
            "variable_density",
            "low_pass",
            "variable_density_lines",
            "knoll",
        ]
    )
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> SamplingConfig:
        if not isinstance(d, dict):
            raise TypeError(f"config: expected a mapping, got {type(d).__name__}")
        names = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(d) - set(names))
        if unknown:
            shown = ", ".join(names[:4]) + ", ..."
            raise ValueError(f"unknown config key(s) {unknown}; allowed: {shown}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def need(cond, key, expected):
            if not cond:
                raise ValueError(f"{key}={getattr(self, key)!r}: expected {expected}")

        for key in ("size", "n_train", "maxiter", "alpha_maxiter", "seed"):
            v = getattr(self, key)
            need(isinstance(v, int) and not isinstance(v, bool), key, "an integer")
        for key in ("noise", "gamma", "eps", "beta", "alpha0", "tol", "cg_tol", "threshold"):
            v = getattr(self, key)
            need(isinstance(v, (int, float)) and not isinstance(v, bool), key, "a number")
        need(isinstance(self.data, str) and self.data, "data", "a dataset name or file path")
        need(self.size >= 8, "size", "an integer >= 8")
        need(self.n_train >= 1, "n_train", "an integer >= 1")
        need(self.n_test is None or (isinstance(self.n_test, int) and self.n_test >= 1),
             "n_test", "null or an integer >= 1")
        need(self.noise >= 0, "noise", "a number >= 0")
        need(self.gamma > 0, "gamma", "a positive number")
        need(self.eps > 0, "eps", "a positive number")
        need(self.beta >= 0, "beta", "a number >= 0")
        need(self.alpha0 > 0, "alpha0", "a positive number")
        need(self.maxiter >= 1, "maxiter", "an integer >= 1")
        need(self.regulariser in REGULARISERS and self.regulariser != "dtv", "regulariser",
             "one of tv, wavelet, h1, none")
        need(self.parametrisation in ("free", "lines", "fixed"), "parametrisation",
             "one of free, lines, fixed")
        need(self.line_axis in (0, 1), "line_axis", "0 or 1")
        need(self.line_weights in ("amplitude", "power"), "line_weights",
             "'amplitude' (thesis) or 'power' (learn the data weights s**2)")
        need(0 < self.fixed_rate <= 1, "fixed_rate", "a number in (0, 1]")
        bc = self.beta_continuation
        need(bc is None or (isinstance(bc, list) and bc and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in bc)
            and [float(f) for f in bc] == sorted(set(float(f) for f in bc)) and bc[-1] == 1),
            "beta_continuation", "null or an increasing list of fractions in (0, 1] ending at 1")
        need(self.solver in ("newton", "pdhg"), "solver", "'newton' or 'pdhg'")
        need(isinstance(self.baselines, list) and all(b in BASELINES for b in self.baselines),
             "baselines", f"a list drawn from {list(BASELINES)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: dict | None = None) -> SamplingConfig:
    """Read a YAML file into a validated :class:`SamplingConfig` (``overrides`` win)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {str(path)!r}: no such file")
    with open(path) as f:
        d = yaml.safe_load(f) or {}
    if not isinstance(d, dict):
        raise ValueError(f"config {str(path)!r}: expected a YAML mapping at the top level")
    d.update(overrides or {})
    return SamplingConfig.from_dict(d)
