"""Chapter 2: ordinary vs roto-translation-equivariant learned reconstruction (thesis §2.5-2.6).

Three experiments of the protocol (:mod:`spinv.experiments.protocol`), each on CT (``ct-head``)
or MRI (``brain-t1``), configured by ``configs/equivariance-*.yaml``
(:mod:`.config`):

* ``sweep-n``: training-set-size sweep, ordinary vs C4, upright and rotated tests
  (Figs 2.8-2.11, :func:`.sweeps.run_sweep_n`);
* ``groups``: group-order sweep :math:`m \\in \\{1, 2, 3, 4, 6, 8\\}` at fixed N (Fig. 2.7,
  :func:`.sweeps.run_groups`);
* ``depth``: learned iterations past their trained depth vs TV-PDHG (Fig. 2.12,
  :func:`.depth.run_depth`);
* ``compare-models``: trained models (run directories or zoo names) vs FBP and TV on the
  held-out slab, upright and rotated (:func:`.models.run_compare_models`).

Modules: :mod:`.data` (slices, simulated measurements, rotated test sets), :mod:`.training`
(the LPG models on :func:`spinv.training.engine.fit`), :mod:`.evaluation`, :mod:`.baselines`
(FBP/zero filling and TV), :mod:`.report` (tables, figures), :mod:`.comparison` (the in-memory
CT comparison). Heavy modules are imported when an experiment runs, not when the catalogue is
listed.
"""

from __future__ import annotations

from spinv.experiments.equivariance.config import DepthConfig, GroupsConfig, SweepNConfig
from spinv.experiments.equivariance.models import CompareModelsConfig
from spinv.experiments.protocol import Experiment, lazy

__all__ = ["COMPARE_MODELS", "DEPTH", "EXPERIMENTS", "GROUPS", "SWEEP_N"]

_PACKAGE = "spinv.experiments.equivariance"
_REPORT = lazy(f"{_PACKAGE}.report:results_text")

SWEEP_N = Experiment("equivariance", "sweep-n", "training-set-size sweep, ordinary vs C4, "
                     "upright and rotated tests (Figs 2.8-2.11)", SweepNConfig,
                     lazy(f"{_PACKAGE}.sweeps:run_sweep_n"), _REPORT, resumable=True)
GROUPS = Experiment("equivariance", "groups", "group-order sweep m in {1, 2, 3, 4, 6, 8} at "
                    "fixed N (Fig. 2.7)", GroupsConfig, lazy(f"{_PACKAGE}.sweeps:run_groups"),
                    _REPORT, resumable=True)
DEPTH = Experiment("equivariance", "depth", "learned iterations past their trained depth vs "
                   "TV-PDHG iterates (Fig. 2.12)", DepthConfig,
                   lazy(f"{_PACKAGE}.depth:run_depth"), _REPORT, resumable=True)
COMPARE_MODELS = Experiment("equivariance", "compare-models", "trained models (runs or zoo "
                            "names) vs FBP and TV on the held-out slab, upright and rotated",
                            CompareModelsConfig, lazy(f"{_PACKAGE}.models:run_compare_models"),
                            lazy(f"{_PACKAGE}.models:comparison_text"))
EXPERIMENTS = (SWEEP_N, GROUPS, DEPTH, COMPARE_MODELS)
