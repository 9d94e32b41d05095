"""Chapter 3: nonexpansive and averaged ResNets, denoising and Plug-and-Play (thesis §3.3).

Three experiments of the protocol (:mod:`spinv.experiments.protocol`), configured by
``configs/nonexpansive-*.yaml`` (one section per experiment, :mod:`.config`):

* ``toy``: fit :math:`|x|` from 6 points, nonexpansive vs unconstrained ResNet (Fig. 3.1,
  :func:`.toy.run_toy`);
* ``denoise``: PSNR of TV, DnCNN and nonexpansive Euler/Heun/RK4 denoisers on natural images
  (Fig. 3.2, Table 3.1, :func:`.denoise.run_denoise`);
* ``pnp``: PnP-PGD (Algorithm 6) and PnP-ADMM with a certified averaged denoiser vs a DnCNN
  on held-out CT / MRI slices, parameters chosen on the validation split (:func:`.pnp.run_pnp`).

Modules: :mod:`.denoising` (TV, evaluation, the model grid, the denoising experiment),
:mod:`.denoiser_training` (denoisers on :func:`spinv.training.engine.fit`),
:mod:`.pnp_protocol` (validation protocol), :mod:`.pnp_convergence` (fixed-point residuals of
untrained denoisers), :mod:`.report` and :mod:`.pnp_report` (tables, figures). Every trained
network leaves a run directory under ``OUT/runs/``; running again with the same ``OUT``
resumes. Heavy modules are imported when an experiment runs, not when the catalogue is listed.
"""

from __future__ import annotations

from spinv.experiments.nonexpansive.config import DenoiseConfig, PnPConfig, ToyConfig
from spinv.experiments.protocol import Experiment, lazy

__all__ = ["DENOISE", "EXPERIMENTS", "PNP", "TOY"]

SECTIONS = ("toy", "denoise", "pnp")
_PACKAGE = "spinv.experiments.nonexpansive"
_REPORT = lazy(f"{_PACKAGE}.report:results_text")

TOY = Experiment("nonexpansive", "toy", "fit |x| from 6 points: nonexpansive vs "
                 "unconstrained ResNet (Fig. 3.1)", ToyConfig,
                 lazy(f"{_PACKAGE}.toy:run_toy"), _REPORT, resumable=True,
                 sections=SECTIONS)
DENOISE = Experiment("nonexpansive", "denoise", "PSNR of TV, DnCNN and nonexpansive "
                     "Euler/Heun/RK4 denoisers (Fig. 3.2, Table 3.1)", DenoiseConfig,
                     lazy(f"{_PACKAGE}.denoise:run_denoise"), _REPORT, resumable=True,
                     sections=SECTIONS)
PNP = Experiment("nonexpansive", "pnp", "PnP-PGD (Algorithm 6) and PnP-ADMM, averaged vs "
                 "DnCNN denoisers, on held-out CT/MRI slices", PnPConfig,
                 lazy(f"{_PACKAGE}.pnp:run_pnp"), _REPORT, resumable=True,
                 sections=SECTIONS)
EXPERIMENTS = (TOY, DENOISE, PNP)
