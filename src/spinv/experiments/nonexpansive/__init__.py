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

from pathlib import Path

from spinv.experiments.nonexpansive.config import DenoiseConfig, PnPConfig, ToyConfig
from spinv.experiments.protocol import Experiment, Progress

__all__ = ["DENOISE", "EXPERIMENTS", "PNP", "TOY"]

SECTIONS = ("toy", "denoise", "pnp")


def _toy(config: ToyConfig, out: Path, progress: Progress | None = None,
         resume: bool = False) -> dict:
    from spinv.experiments.nonexpansive.toy import run_toy

    return run_toy(config, out, progress, resume)


def _denoise(config: DenoiseConfig, out: Path, progress: Progress | None = None,
             resume: bool = False) -> dict:
    from spinv.experiments.nonexpansive.denoise import run_denoise

    return run_denoise(config, out, progress, resume)


def _pnp(config: PnPConfig, out: Path, progress: Progress | None = None,
         resume: bool = False) -> dict:
    from spinv.experiments.nonexpansive.pnp import run_pnp

    return run_pnp(config, out, progress, resume)


def _report(results: dict, out: Path) -> str:
    """The ``results.md`` the experiment wrote."""
    return (Path(out) / "results.md").read_text()


TOY = Experiment("nonexpansive", "toy", "fit |x| from 6 points: nonexpansive vs "
                 "unconstrained ResNet (Fig. 3.1)", ToyConfig, _toy, _report, resumable=True,
                 sections=SECTIONS)
DENOISE = Experiment("nonexpansive", "denoise", "PSNR of TV, DnCNN and nonexpansive "
                     "Euler/Heun/RK4 denoisers (Fig. 3.2, Table 3.1)", DenoiseConfig, _denoise,
                     _report, resumable=True, sections=SECTIONS)
PNP = Experiment("nonexpansive", "pnp", "PnP-PGD (Algorithm 6) and PnP-ADMM, averaged vs "
                 "DnCNN denoisers, on held-out CT/MRI slices", PnPConfig, _pnp, _report,
                 resumable=True, sections=SECTIONS)
EXPERIMENTS = (TOY, DENOISE, PNP)
