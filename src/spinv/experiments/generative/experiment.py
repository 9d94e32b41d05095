r"""Experiment: generative regularisers for MRI vs TV and end-to-end learning (talk 002).

Reproduces, at CPU scale, the comparisons of the talk's slides "Comparison: Covariance Models",
"Comparison: End-to-end Learning" and "Comparison: Other unsupervised methods":

1. train a VAE mean model and covariance heads (identity, diagonal, low-rank + diagonal,
   banded Cholesky precision) on augmented ``brain-t1`` slices (:mod:`spinv.training.vae`);
2. simulate :math:`y = S(Fu+\eta)` on test slices for every sampling rate and noise level of the
   config (:class:`spinv.operators.SubsampledFourier`, :mod:`spinv.operators.sampling`);
3. reconstruct with every method of :mod:`.methods`, among them a post-processing CNN trained
   end-to-end for ONE setting (``problem.train_setting``, :mod:`.end_to_end`);
4. write PSNR/SSIM tables (``results.json``, ``results.md``) and figures: learned covariance
   structure (correlation rows and eigen-images of :math:`\Sigma(z)`), PSNR vs rate per noise
   level, and example reconstructions.

Every regularisation weight is tuned once, on validation slices at the training setting
(like the end-to-end network, which also sees only that setting), and then kept fixed: the
tables show how each method generalises to unseen sampling rates and noise levels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_write_text
from spinv.experiments.generative.config import GenerativeConfig
from spinv.experiments.generative.methods import Reconstructors, make_problem, weight_grid
from spinv.experiments.generative.report import metrics, setting_key
from spinv.experiments.nonexpansive.config import resolve_device
from spinv.experiments.protocol import Progress, staged

__all__ = ["run_experiment", "vae_settings"]


def vae_settings(config: GenerativeConfig) -> tuple[Any, Any, Any]:
    """``(ModelSpec, mean-stage TrainSettings, covariance-stage TrainSettings)`` of the VAEs
    (:func:`spinv.training.vae.train_generative_models`)."""
    from spinv.generative.train import TrainSettings
    from spinv.training.vae import ModelSpec

    m, t = config.model, config.train
    spec = ModelSpec(image_size=int(config.data.image_size), latent_dim=int(m.latent_dim),
                     width=int(m.width), rank=int(m.rank), radius=int(m.radius),
                     covariances=list(m.covariances))
    mean = TrainSettings("mean", int(t.mean_steps), int(t.batch_size), float(t.lr),
                         float(t.beta), int(config.seed))
    cov = TrainSettings("covariance", int(t.cov_steps), int(t.batch_size), float(t.lr),
                        float(t.beta), int(config.seed) + 1)
    return spec, mean, cov


def _slices(config: GenerativeConfig, device) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Training slices (``(N, H, W)`` array), evenly spaced validation and test slices
    ``(n, 1, S, S)`` on ``device`` (the splits are contiguous slabs)."""
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices

    d = config.data
    S = int(d.image_size)
    train_imgs = load_dataset(d.dataset, "train")
    x_val = prepare_slices(load_dataset(d.dataset, "val"), S)
    x_test = prepare_slices(load_dataset(d.dataset, "test"), S)
    x_val = x_val[np.linspace(0, len(x_val) - 1, int(d.n_val)).round().astype(int)].to(device)
    x_test = x_test[np.linspace(0, len(x_test) - 1, int(d.n_test)).round().astype(int)]
    return train_imgs, x_val, x_test.to(device)


def _vae_models(config: GenerativeConfig, train_imgs, out: Path, device,
                progress: Progress | None) -> dict:
    """Train the VAEs (run directories ``out/models/vae-<kind>``) or load those of
    ``config.models``; their weights are frozen."""
    from spinv.training.vae import load_vae, train_generative_models

    if config.models is None:
        spec, ms, cs = vae_settings(config)
        models = train_generative_models(train_imgs, out / "models", spec, ms, cs,
                                         zoom=config.data.zoom, flip=config.data.flip,
                                         device=device, progress=staged(progress, "VAE"))
    else:
        kinds = list(dict.fromkeys([*config.model.covariances, "identity"]))
        models = {kind: load_vae(Path(config.models) / f"vae-{kind}", device) for kind in kinds}
    for m in models.values():
        for p in m.parameters():
            p.requires_grad_(False)
    return models


def _tune(ctx: Reconstructors, methods: list[str], x_val: torch.Tensor,
          progress: Progress | None) -> tuple[dict, dict]:
    """Each method's weight: the best mean validation PSNR at the training setting."""
    c = ctx.config
    pc, ts = c.problem, c.problem.train_setting
    problem_v, y_v = make_problem(x_val, ts.rate, ts.noise, pc.pattern, pc.mask_seed,
                                  c.seed + 1000)
    lams: dict[str, float] = {}
    tuning: dict[str, dict[str, float]] = {}
    for i, method in enumerate(methods):
        scores = {}
        for lam in weight_grid(c, method):
            u = ctx.reconstruct(method, problem_v.operator, y_v, float(ts.noise), lam)
            scores[f"{lam:g}"] = float(np.mean(metrics(u, x_val)[0]))
        tuning[method] = scores
        if method not in ("zero-filled", "end-to-end"):
            lams[method] = float(max(scores, key=scores.get))
        if progress is not None:
            progress(i + 1, len(methods), {"stage": "tune", "method": method,
                                           "psnr": max(scores.values())})
    return lams, tuning


def _evaluate(ctx: Reconstructors, methods: list[str], lams: dict, x_test: torch.Tensor,
              progress: Progress | None) -> tuple[dict, dict, dict]:
    """PSNR/SSIM tables of every method at every (rate, noise) setting with the tuned weights;
    example reconstructions at the hardest and at the training setting."""
    c = ctx.config
    pc = c.problem
    table: dict[str, dict] = {m: {} for m in methods}
    per_image: dict[str, dict] = {m: {} for m in methods}
    examples: dict[str, dict] = {}
    shown = (setting_key(min(pc.rates), max(pc.noise)),
             setting_key(pc.train_setting.rate, pc.train_setting.noise))
    settings = [(si, ri) for si in range(len(pc.noise)) for ri in range(len(pc.rates))]
    for count, (si, ri) in enumerate(settings, 1):
        noise, rate = pc.noise[si], pc.rates[ri]
        key = setting_key(rate, noise)
        problem, y = make_problem(x_test, rate, noise, pc.pattern, pc.mask_seed,
                                  c.seed + 2000 + 10 * si + ri)
        if key in shown:
            examples[key] = {"truth": x_test[:1, 0]}
        for method in methods:
            u = ctx.reconstruct(method, problem.operator, y, float(noise), lams.get(method, 1.0))
            p, s = metrics(u, x_test)
            table[method][key] = {"psnr_mean": float(np.mean(p)), "psnr_std": float(np.std(p)),
                                  "ssim_mean": float(np.mean(s)), "ssim_std": float(np.std(s))}
            per_image[method][key] = {"psnr": p, "ssim": s}
            if key in examples:
                examples[key][method] = u[:1, 0].detach().clamp(0, 1)
        if progress is not None:
            progress(count, len(settings), {"stage": "evaluate", "setting": key})
    return table, per_image, examples


def _write_outputs(out: Path, summary: dict, examples: dict, models: dict,
                   x_test: torch.Tensor) -> None:
    from spinv.experiments.generative.report import (
        markdown_report,
        plot_covariances,
        plot_examples,
        plot_generalisation,
    )

    cfg, meta = summary["config"], summary["meta"]
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "results.md", markdown_report(summary["table"], cfg,
                                                          summary["weights"], meta,
                                                          summary["tuning"]))
    plot_generalisation(summary["table"], cfg, out / "psnr_vs_rate.png")
    for k, ex in examples.items():
        plot_examples(ex, out / f"examples_{k.replace(',', '_').replace('=', '')}.png", k)
    plot_covariances(models, x_test[len(x_test) // 2: len(x_test) // 2 + 1],
                     out / "covariance.png")


def run_experiment(config: GenerativeConfig, out: Path, progress: Progress | None = None,
                   resume: bool = False) -> dict:
    """The experiment of the module docstring (``generative comparison`` of the protocol);
    returns the summary written to ``out/results.json``. ``config.models`` reuses VAEs from
    ``spinv generative train``; ``progress(step, total, scalars)`` per training step (stages
    ``VAE``, ``end-to-end``), tuned method (``tune``) and evaluated setting (``evaluate``).

    Every trained network leaves a run directory under ``out/models/`` (``vae-<kind>``,
    ``end-to-end``); running again with the same ``out`` resumes the trainings a killed run
    left unfinished and reuses the finished ones (``resume`` or not).
    """
    from spinv.experiments.generative.end_to_end import train_end_to_end

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(config.num_threads))
    device = resolve_device(config.device)
    t0 = time.time()
    train_imgs, x_val, x_test = _slices(config, device)
    models = _vae_models(config, train_imgs, out, device, progress)
    t_train = time.time() - t0
    t1 = time.time()
    e2e = train_end_to_end(config, train_imgs, device, progress, out / "models" / "end-to-end")
    ctx = Reconstructors(config, models, e2e)
    t_e2e = time.time() - t1
    methods = ["zero-filled", "tv", "range", "mean"] + [
        k for k in config.model.covariances if k in models] + ["end-to-end"]
    lams, tuning = _tune(ctx, methods, x_val, progress)
    table, per_image, examples = _evaluate(ctx, methods, lams, x_test, progress)
    meta = {"n_test": len(x_test), "n_val": len(x_val), "seconds": time.time() - t0,
            "seconds_training_vae": t_train, "seconds_training_end_to_end": t_e2e,
            "threads": torch.get_num_threads(), "device": str(device)}
    summary = {"config": config.to_dict(), "weights": lams, "tuning": tuning, "table": table,
               "per_image": per_image, "meta": meta,
               "vae_gamma": float(models["identity"].log_gamma.exp())}
    _write_outputs(out, summary, examples, models, x_test)
    return summary
