"""Generative regularisers for MRI (talk 002): VAE mean and covariance priors vs TV, the range
constraint and end-to-end learning.

One experiment of the protocol (:mod:`spinv.experiments.protocol`), configured by
``configs/generative-*.yaml`` (:mod:`.config`):

* ``comparison``: PSNR/SSIM of every method at several sampling rates and noise levels, the
  weights tuned once at the training setting (:func:`.experiment.run_experiment`; the alias
  ``spinv generative experiment``).

Modules: :mod:`.methods` (the reconstruction methods and MRI problems), :mod:`.end_to_end`
(the end-to-end baseline on :func:`spinv.training.engine.fit`), :mod:`.report` (tables,
figures). The VAEs train through :mod:`spinv.training.vae`. Heavy modules are imported when the
experiment runs, not when the catalogue is listed.
"""

from __future__ import annotations

from spinv.experiments.generative.config import GenerativeConfig
from spinv.experiments.protocol import Experiment, lazy

__all__ = ["COMPARISON", "EXPERIMENTS"]

_PACKAGE = "spinv.experiments.generative"

COMPARISON = Experiment("generative", "comparison", "VAE mean/covariance regularisers vs TV, "
                        "range constraint and end-to-end CNN across MRI rates and noise "
                        "levels (talk 002)", GenerativeConfig,
                        lazy(f"{_PACKAGE}.experiment:run_experiment"),
                        lazy(f"{_PACKAGE}.report:results_text"), resumable=True)
EXPERIMENTS = (COMPARISON,)
