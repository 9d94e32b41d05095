"""Chapter 1: bilevel learning of MRI sampling patterns (thesis §1.3).

The experiments of the protocol (:mod:`spinv.experiments.protocol`), configured by
``configs/sampling-*.yaml`` (:mod:`.config`):

* ``learn``: one learning run with baselines at the learned rate (Tables 1.2-1.3,
  :mod:`.learn`);
* ``beta-sweep``: sampling rate vs held-out SSIM over beta (Fig. 1.5, :mod:`.beta_sweep`);
* ``regularisers``: TV / wavelet / H1 lower levels (Table 1.1, :mod:`.regularisers`);
* ``training-size``: held-out quality vs N (Fig. 1.11, :mod:`.training_size`);
* ``lines``: learned vs greedy vs variable-density Cartesian lines (Tables 1.3-1.4,
  :mod:`.lines`);
* ``density``: kernel densities of learned patterns (Figs. 1.6, 1.8, :mod:`.density`).

The learning runs optimise the sampling weights with scipy's L-BFGS-B, not model weights: they
leave no training runs, so ``--resume`` does not apply. ``spinv sampling evaluate`` (a pattern
file's held-out quality) is a tool, not an experiment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from spinv.experiments.protocol import Experiment
from spinv.experiments.sampling.config import (
    BetaSweepConfig,
    DensityConfig,
    LinesConfig,
    RegularisersConfig,
    SamplingRun,
    TrainingSizeConfig,
)

__all__ = ["BETA_SWEEP", "DENSITY", "EXPERIMENTS", "LEARN", "LINES", "REGULARISERS",
           "TRAINING_SIZE"]


def _lazy(module: str, name: str = "run") -> Callable:
    """``spinv.experiments.sampling.<module>.<name>``, imported when called."""

    def call(*args, **kwargs):
        target = importlib.import_module(f"spinv.experiments.sampling.{module}")
        return getattr(target, name)(*args, **kwargs)

    call.__name__ = f"{module}.{name}"
    return call


def _table(results: dict, out: Path) -> str:
    from spinv.experiments.sampling.common import table_report

    return table_report(results, out)


LEARN = Experiment("sampling", "learn", "learn a pattern and alpha, evaluate against baselines "
                   "at the same rate (Tables 1.2-1.3)", SamplingRun, _lazy("learn"),
                   _lazy("learn", "report"))
BETA_SWEEP = Experiment("sampling", "beta-sweep", "sampling rate vs held-out SSIM over the "
                        "sparsity weight beta (Fig. 1.5)", BetaSweepConfig,
                        _lazy("beta_sweep"), _table)
REGULARISERS = Experiment("sampling", "regularisers", "TV / wavelet / H1 lower-level "
                          "regularisers (Table 1.1)", RegularisersConfig,
                          _lazy("regularisers"), _table)
TRAINING_SIZE = Experiment("sampling", "training-size", "held-out SSIM of the learned pattern "
                           "vs training-set size (Fig. 1.11)", TrainingSizeConfig,
                           _lazy("training_size"), _table)
LINES = Experiment("sampling", "lines", "learned vs greedy vs variable-density Cartesian lines, "
                   "lower-level solves (Tables 1.3-1.4)", LinesConfig, _lazy("lines"), _table)
DENSITY = Experiment("sampling", "density", "kernel densities of learned patterns "
                     "(Figs. 1.6, 1.8)", DensityConfig, _lazy("density"), _table)
EXPERIMENTS = (LEARN, BETA_SWEEP, REGULARISERS, TRAINING_SIZE, LINES, DENSITY)
