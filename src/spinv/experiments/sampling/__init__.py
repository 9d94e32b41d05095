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

from spinv.experiments.protocol import Experiment, lazy
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

_PACKAGE = "spinv.experiments.sampling"
_TABLE = lazy(f"{_PACKAGE}.common:table_report")


def _lazy(module: str, name: str = "run"):
    return lazy(f"{_PACKAGE}.{module}:{name}")


LEARN = Experiment("sampling", "learn", "learn a pattern and alpha, evaluate against baselines "
                   "at the same rate (Tables 1.2-1.3)", SamplingRun, _lazy("learn"),
                   _lazy("learn", "report"))
BETA_SWEEP = Experiment("sampling", "beta-sweep", "sampling rate vs held-out SSIM over the "
                        "sparsity weight beta (Fig. 1.5)", BetaSweepConfig,
                        _lazy("beta_sweep"), _TABLE)
REGULARISERS = Experiment("sampling", "regularisers", "TV / wavelet / H1 lower-level "
                          "regularisers (Table 1.1)", RegularisersConfig,
                          _lazy("regularisers"), _TABLE)
TRAINING_SIZE = Experiment("sampling", "training-size", "held-out SSIM of the learned pattern "
                           "vs training-set size (Fig. 1.11)", TrainingSizeConfig,
                           _lazy("training_size"), _TABLE)
LINES = Experiment("sampling", "lines", "learned vs greedy vs variable-density Cartesian lines, "
                   "lower-level solves (Tables 1.3-1.4)", LinesConfig, _lazy("lines"), _TABLE)
DENSITY = Experiment("sampling", "density", "kernel densities of learned patterns "
                     "(Figs. 1.6, 1.8)", DensityConfig, _lazy("density"), _TABLE)
EXPERIMENTS = (LEARN, BETA_SWEEP, REGULARISERS, TRAINING_SIZE, LINES, DENSITY)
