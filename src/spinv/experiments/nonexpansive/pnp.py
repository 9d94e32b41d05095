"""The experiment ``nonexpansive pnp`` (thesis ch. 3): Plug-and-Play proximal gradient
(Algorithm 6) and PnP-ADMM with a certified averaged denoiser vs an unconstrained DnCNN, on
held-out ``ct-head`` slices (low-dose :func:`~spinv.problems.ct_problem`) or ``brain-t1``
slices (:func:`~spinv.problems.mri_problem`, variable-density lines).

:func:`run_pnp` follows the validation protocol of
:mod:`~spinv.experiments.nonexpansive.pnp_protocol`:

1. train, on the training split with Gaussian noise of each level in ``denoiser_sigmas``, the
   certified averaged denoiser (tied, ``alpha=0.5``, residual, ``gamma`` < 2, so
   :math:`\\mathrm{id}-\\gamma\\Gamma` is :math:`\\gamma/2`-averaged) and a DnCNN, or use the
   given ``denoiser`` (a run directory or a :mod:`spinv.zoo` name, e.g.
   ``denoise-averaged-s0.05``) instead of the averaged one;
2. on ``n_val`` validation slices choose by mean PSNR TV's alpha and, for PnP-PGD and PnP-ADMM
   with each denoiser kind, the training sigma, the relaxation weight :math:`\\lambda` of
   :math:`(1-\\lambda)\\mathrm{id}+\\lambda\\Phi` and the step / penalty;
3. reconstruct the test slices once with the chosen parameters; report mean PSNR / SSIM, the
   certificate of the relaxed denoiser actually used, and the fixed-point residual per
   iteration (Theorem 3.2.4: nonincreasing for an averaged iteration map).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spinv.experiments.nonexpansive.config import PnPConfig, settings_record, setup_device
from spinv.experiments.nonexpansive.denoiser_training import DenoiserTraining, train_denoiser
from spinv.experiments.nonexpansive.denoising import machine_info, write_json
from spinv.experiments.nonexpansive.pnp_protocol import Case, PnPSettings
from spinv.experiments.protocol import Progress, staged
from spinv.learned.pnp import RelaxedDenoiser
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser

__all__ = ["PnPStudy", "run_pnp"]


@dataclass
class PnPStudy:
    """The state of one PnP experiment passed between its stages: the settings, where it
    writes, the progress protocol, the validation and test :class:`Case`, the ``result``
    written to ``results.json`` and the test reconstructions ``recon`` of the figure."""

    config: PnPConfig
    out: Path
    progress: Progress | None
    val: Case
    test: Case
    result: dict
    recon: dict[str, torch.Tensor] = field(default_factory=dict)

    def save(self) -> None:
        write_json(self.out / "results.json", self.result)


def _problem(c: PnPConfig):
    from spinv.problems import ct_problem, mri_problem

    n = c.image_size
    if c.problem == "ct":
        return ct_problem(n, n_angles=c.n_angles, photons=c.photons)
    return mri_problem(n, pattern=c.mask, rate=c.rate, noise=c.noise, seed=c.seed)


def _study(c: PnPConfig, out: Path, progress: Progress | None, device) -> PnPStudy:
    """Validation and test slices, their simulated data, and the result skeleton."""
    from spinv.experiments.nonexpansive.pnp_protocol import evenly_spaced, image_metrics, make_case
    from spinv.training.data import load_images_for

    dataset, n = c.dataset_name, c.image_size
    val_all = load_images_for(dataset, "val", n)
    test_all = load_images_for(dataset, "test", n)
    val_idx = evenly_spaced(val_all.shape[0], c.n_val)
    test_idx = evenly_spaced(test_all.shape[0], c.n_test)
    if c.show_index >= len(test_idx):
        raise ValueError(f"config key 'pnp.show_index': got {c.show_index}; only "
                         f"{len(test_idx)} test slices are used")
    problem = _problem(c)
    problem.operator.to(device)
    val = make_case(problem, val_all[val_idx].to(device), c.seed + 1, c.init)
    test = make_case(problem, test_all[test_idx].to(device), c.seed, c.init)
    result: dict[str, Any] = {
        "command": "pnp", "settings": settings_record(c), "machine": machine_info(),
        "dataset": dataset, "val_indices": val_idx, "test_indices": test_idx,
        "op_norm_squared": test.op_norm2, "denoisers": {}, "validation": {}, "test": {},
    }
    result["test"][problem.analytic_name] = image_metrics(test.analytic, test.truth)
    return PnPStudy(c, out, progress, val, test, result)


def _certificates(model) -> dict:
    info: dict[str, Any] = {}
    if hasattr(model, "certified_lipschitz"):
        info["certified_lipschitz"] = model.certified_lipschitz()
        info["certified_averagedness"] = model.certified_averagedness()
    elif hasattr(model, "lipschitz_upper_bound"):
        info["certified_lipschitz"] = model.lipschitz_upper_bound()
        info["certified_averagedness"] = None
    return info


def _new_denoiser(c: PnPConfig, kind: str, device) -> torch.nn.Module:
    """An untrained averaged denoiser (tied, ``alpha=0.5``, residual) or DnCNN."""
    if kind == "averaged":
        return NonexpansiveDenoiser.from_config(1, width=c.width, depth=c.depth, method=c.method,
                                                gamma=c.gamma, residual=True, tied=True, alpha=0.5,
                                                power_size=(c.crop, c.crop), seed=c.seed).to(device)
    return DnCNN(1, width=c.dncnn_width_resolved, depth=c.dncnn_depth,
                 batch_norm=c.dncnn_batch_norm, seed=c.seed).to(device)


def _train_denoisers(study: PnPStudy, device) -> dict[str, dict[Any, torch.nn.Module]]:
    """One averaged denoiser and one DnCNN per training noise level of ``denoiser_sigmas``
    (run directories ``out/runs/<kind>-sigma=<sigma>``), or the given ``denoiser`` run."""
    from spinv.training.data import load_images_for

    c, denoisers = study.config, study.result["denoisers"]
    images = load_images_for(c.dataset_name, "train", c.image_size).to(device)
    kinds: dict[str, dict[Any, torch.nn.Module]] = {"averaged": {}}
    if c.include_dncnn:
        kinds["DnCNN"] = {}
    for sigma in c.denoiser_sigmas:
        for kind in [k for k in kinds if k != "averaged" or c.denoiser is None]:
            model = _new_denoiser(c, kind, device)
            settings = DenoiserTraining(sigma, c.train_steps, c.batch_size, c.crop, c.lr,
                                        c.seed, c.lr_schedule, c.dataset_name)
            name = f"{kind} sigma={sigma}"
            info = train_denoiser(model, images, settings, staged(study.progress, name),
                                  study.out / "runs" / f"{kind}-sigma={sigma}")
            kinds[kind][sigma] = model
            denoisers[name] = {"source": "trained here", "sigma": sigma,
                               "identity_loss": sigma ** 2, **info, **_certificates(model)}
    if c.denoiser is not None:
        from spinv.training.checkpoint import load_model
        from spinv.zoo import resolve_model

        model = load_model(resolve_model(c.denoiser))[0].to(device).eval()
        kinds["averaged"] = {None: model}
        denoisers["averaged (given)"] = {"source": c.denoiser, "sigma": None,
                                         **_certificates(model)}
    return kinds


def _tv(study: PnPStudy) -> None:
    """TV with alpha chosen on the validation slices (log grid, golden sections)."""
    from spinv.experiments.nonexpansive.pnp_protocol import run_tv
    from spinv.variational.reconstruct import log_search

    c = study.config
    alpha, hist = log_search(
        lambda a: run_tv(study.val, a, c.tv_iterations, with_ssim=False)["psnr_mean"],
        c.tv_grid, c.tv_refine)
    study.result["validation"]["TV"] = {"best": {"alpha": alpha},
                                        "table": [{"alpha": a, "score": s} for a, s in hist]}
    r = run_tv(study.test, alpha, c.tv_iterations, keep_x=True)
    study.recon["TV"] = r.pop("x")
    study.result["test"]["TV"] = {**r, "params": {"alpha": alpha}}


def _grid(c: PnPConfig, method: str, sigmas: list) -> list[dict]:
    if method == "pgd":
        return [{"sigma": s, "weight": w, "step_factor": f} for s in sigmas
                for w in c.weights for f in c.step_factors]
    return [{"sigma": s, "weight": w, "rho_factor": r} for s in sigmas
            for w in c.admm_weights for r in c.admm_rhos]


def _admissible(kind: str, method: str, model, weight: float) -> bool:
    """ADMM with the averaged denoiser: only certified firmly nonexpansive relaxations."""
    if kind != "averaged" or method != "admm":
        return True
    alpha = RelaxedDenoiser(model, weight).certified_averagedness()
    return alpha is not None and alpha <= 0.5 + 1e-12


def _settings(c: PnPConfig, method: str, point: dict) -> PnPSettings:
    iterations = c.iterations if method == "pgd" else c.admm_iterations
    return PnPSettings(method, iterations=iterations, cg_iterations=c.cg_iterations,
                       **{k: v for k, v in point.items() if k != "sigma"})


def _pnp(study: PnPStudy, method: str, kind: str, models: dict) -> None:
    """PnP-``method`` with the denoisers ``models`` (by training sigma) of ``kind``: the
    grid searched on the validation slices, the best point run once on the test slices."""
    from spinv.experiments.nonexpansive.pnp_protocol import grid_search, run_pnp_method

    c, label = study.config, f"PnP-{method.upper()} {kind}"
    grid = _grid(c, method, list(models))
    count = {"runs": 0}

    def step(scalars: dict) -> None:
        count["runs"] += 1
        if study.progress is not None:
            study.progress(count["runs"], len(grid) + 1, {**scalars, "stage": label})

    def score(p: dict) -> float:
        step({})
        if not _admissible(kind, method, models[p["sigma"]], p["weight"]):
            return -math.inf
        return run_pnp_method(study.val, models[p["sigma"]], _settings(c, method, p),
                              with_ssim=False)["psnr_mean"]

    best, table = grid_search(score, grid)
    study.result["validation"][label] = {"best": best, "table": table}
    model = models[best["sigma"]]
    r = run_pnp_method(study.test, model, _settings(c, method, best), track=True)
    step({"psnr": r["psnr_mean"]})
    study.recon[label] = r.pop("x")
    relaxed = RelaxedDenoiser(model, best["weight"])
    study.result["test"][label] = {**r, "params": best,
                                   "certified_averagedness": relaxed.certified_averagedness(),
                                   "certified_lipschitz": relaxed.certified_lipschitz()}


def run_pnp(config: PnPConfig, out: Path, progress: Progress | None = None,
            resume: bool = False) -> dict:
    """The experiment ``nonexpansive pnp`` (module docstring): ``progress(step, total,
    scalars)`` per training step and per PnP run (stage: the denoiser or the method). Writes
    ``results.json`` (also after each stage), ``results.md``, ``convergence.png`` and
    ``reconstructions.png`` to ``out``; the denoisers' run directories to ``out/runs``
    (always resumed when they exist, ``resume`` or not). Returns the results."""
    from spinv.experiments.nonexpansive.pnp_report import write_pnp_report

    t_start = time.perf_counter()
    if config.denoiser is not None:
        from spinv.training.checkpoint import read_checkpoint
        from spinv.zoo import resolve_model

        try:
            given = resolve_model(config.denoiser)
        except ValueError:
            raise FileNotFoundError(f"config key 'denoiser' (--denoiser): {config.denoiser!r}: "
                                    "no such run directory or zoo name (`spinv models list`)"
                                    ) from None
        read_checkpoint(given)  # a damaged denoiser is found before any training
    device = setup_device(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = _study(config, out, progress, device)
    kinds = _train_denoisers(study, device)
    study.save()
    if config.include_tv:
        _tv(study)
        study.save()
    for method in ["pgd"] + (["admm"] if config.include_admm else []):
        for kind, models in kinds.items():
            _pnp(study, method, kind, models)
            study.save()
    study.result["seconds"] = time.perf_counter() - t_start
    study.result["machine_after"] = machine_info()
    study.save()
    write_pnp_report(study)
    return study.result
