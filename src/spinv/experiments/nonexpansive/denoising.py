"""Denoising natural images (thesis §3.3.2, Fig. 3.2, Table 3.1): PSNR of TV, DnCNN and
nonexpansive Euler/Heun/RK4 denoisers at small scale.

:func:`denoising_experiment` trains on random crops of ``spinv.data.load_dataset("natural",
"train")`` with fresh Gaussian noise each step and tests on the fixed test split: TV denoising
(:math:`\\arg\\min_u\\frac12\\|u-y\\|^2+\\alpha\\,TV(u)`, :class:`spinv.variational.tv.TV`
prox, :math:`\\alpha` tuned on training images), DnCNN (residual, Eq. 3.6 with
:math:`\\gamma=1`), and :class:`~spinv.nn.nonexpansive.NonexpansiveDenoiser` trained by Eq. 3.5
(non-residual) or Eq. 3.6 (residual), Adam with constraint enforcement after every step.

Every network is trained by the training engine (through
:func:`~spinv.experiments.nonexpansive.denoiser_training.train_denoiser`) and, given a folder
for runs, leaves a run directory per network that a repeated call resumes. The experiment
``nonexpansive denoise`` of the protocol is
:func:`spinv.experiments.nonexpansive.denoise.run_denoise`.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from spinv.experiments.nonexpansive.config import DenoiseConfig, resolve_device
from spinv.experiments.nonexpansive.denoiser_training import train_denoiser
from spinv.experiments.protocol import Progress, staged
from spinv.training.sources_images import random_crops

__all__ = [
    "DenoiseHooks",
    "Images",
    "default_models",
    "denoising_experiment",
    "evaluate_denoiser",
    "machine_info",
    "model_entries",
    "tune_tv_alpha",
    "tv_denoise",
    "write_json",
]


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (creating the parent folders)."""
    from spinv.atomic import atomic_write_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


@torch.no_grad()
def tv_denoise(y: torch.Tensor, alpha: float, iterations: int = 200) -> torch.Tensor:
    """:math:`\\arg\\min_u \\tfrac12\\|u-y\\|^2+\\alpha\\,TV(u)` (prox of TV, FISTA on the dual)."""
    from spinv.variational.tv import TV

    return TV(alpha=alpha).prox(y, 1.0, iterations=iterations)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    from spinv.metrics import psnr

    return psnr(x, ref, data_range=1.0)


def tune_tv_alpha(clean: torch.Tensor, noisy: torch.Tensor, grid=None,
                  iterations: int = 200) -> tuple[float, float]:
    """Grid search (log-spaced, then refined) of the TV weight maximising mean PSNR."""
    grid = list(np.logspace(-3, 0, 7)) if grid is None else list(grid)

    def score(a: float) -> float:
        return float(_psnr(tv_denoise(noisy, a, iterations), clean).mean())

    scores = {float(a): score(float(a)) for a in grid}
    best = max(scores, key=scores.get)
    for a in np.exp(np.linspace(math.log(best) - 0.6, math.log(best) + 0.6, 5)):
        scores[float(a)] = score(float(a))
    best = max(scores, key=scores.get)
    return float(best), scores[best]


@torch.no_grad()
def evaluate_denoiser(fn, clean: torch.Tensor, noisy: torch.Tensor) -> dict:
    """Mean, std and per-image PSNR (dB, data range 1) of ``fn(noisy)`` against ``clean``."""
    p = torch.cat([_psnr(fn(noisy[i:i + 1]), clean[i:i + 1]) for i in range(clean.shape[0])])
    p = p.cpu()
    return {"psnr_mean": float(p.mean()), "psnr_std": float(p.std()) if len(p) > 1 else 0.0,
            "psnr": p.tolist()}


def default_models(width: int, depth: int, gammas=(1.0, 1.5, 1.99), residual=(True, False),
                   higher_order=("heun", "rk4"), step: float = 2.0) -> dict[str, dict]:
    """The model grid of Fig. 3.2 / Table 3.1: Euler with every gamma, residual (R, Eq. 3.6)
    and/or not (NR, Eq. 3.5); the ``higher_order`` methods residual with the last gamma.
    DnCNN is added by the experiment.

    >>> list(default_models(8, 2, gammas=[1.99], residual=[True]))
    ['euler-R-g1.99', 'heun-R-g1.99', 'rk4-R-g1.99']
    """
    gammas = list(gammas)
    models = {}
    for g in gammas:
        for res in residual:
            models[f"euler-{'R' if res else 'NR'}-g{g}"] = dict(method="euler", gamma=g,
                                                                 residual=res)
    for m in higher_order:
        models[f"{m}-R-g{gammas[-1]}"] = dict(method=m, gamma=gammas[-1], residual=True)
    return {k: dict(v, width=width, depth=depth, step=step) for k, v in models.items()}


def machine_info() -> dict:
    """Where a run happened (results are only comparable on the same machine and load)."""
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_average": list(os.getloadavg())
            if hasattr(os, "getloadavg") else None}


class Images(NamedTuple):
    """Training images, test images and their noisy versions, on one device."""

    train: torch.Tensor
    test: torch.Tensor
    noisy_test: torch.Tensor


@dataclass
class DenoiseHooks:
    """What :func:`denoising_experiment` reports to and where it keeps runs: ``log(text)``
    (one line per method), ``progress(step, total, scalars)`` after every training step
    (stage: the network's name), ``on_save(result)`` after every method, and ``runs_dir``
    (every network leaves ``runs_dir/<name>``; ``None``: no run directories)."""

    log: Callable[[str], None] = print
    progress: Progress | None = None
    on_save: Callable[[dict], None] | None = None
    runs_dir: str | os.PathLike | None = None


def _images(o: DenoiseConfig, device: torch.device) -> Images:
    """Training images, test images (first ``n_test``, centre crops of ``test_size``) and
    their noisy versions (seed ``seed + 12345``), on ``device``."""
    from spinv.data import load_dataset
    from spinv.problems import denoising_problem

    train = torch.from_numpy(load_dataset("natural", "train"))[:, None]
    test = torch.from_numpy(load_dataset("natural", "test"))[:, None]
    if o.n_test is not None:
        test = test[:o.n_test]
    if o.test_size is not None:
        h, w = test.shape[-2:]
        if o.test_size > min(h, w):
            raise ValueError(f"test_size={o.test_size}: expected at most {min(h, w)}")
        t, l_ = (h - o.test_size) // 2, (w - o.test_size) // 2
        test = test[..., t:t + o.test_size, l_:l_ + o.test_size]
    gen = torch.Generator().manual_seed(o.seed + 12345)
    noisy_test = denoising_problem(o.sigma).simulate(test, generator=gen)
    return Images(train.to(device), test.to(device), noisy_test.to(device))


def _tv_entry(o: DenoiseConfig, images: Images, log: Callable[[str], None]) -> dict:
    """TV denoising with :math:`\\alpha` tuned on noisy training crops (seed ``seed + 1``)."""
    from spinv.problems import denoising_problem

    train = images.train
    g2 = torch.Generator().manual_seed(o.seed + 1)
    tr = random_crops(train.cpu(), o.tv_tune_crops, min(96, *train.shape[-2:]), g2)
    tr_noisy = denoising_problem(o.sigma).simulate(tr, generator=g2)
    alpha, train_psnr = tune_tv_alpha(tr.to(train.device), tr_noisy.to(train.device),
                                      iterations=o.tv_iterations)
    t0 = time.perf_counter()
    ev = evaluate_denoiser(lambda y: tv_denoise(y, alpha, o.tv_iterations), images.test,
                           images.noisy_test)
    log(f"tv alpha={alpha:.4g}: {ev['psnr_mean']:.2f} dB")
    return dict(ev, alpha=alpha, train_psnr=train_psnr, eval_seconds=time.perf_counter() - t0)


def model_entries(o: DenoiseConfig,
                  models: dict[str, dict] | None = None) -> dict[str, tuple[dict, dict]]:
    """``{name: (spec, entry)}`` of the networks to train: the ``spec`` reported in the
    results and the catalogue ``entry`` (:mod:`spinv.training.models`: ``name`` and options)
    that builds the network. DnCNN (if ``include_dncnn``) first, then ``models`` (default:
    :func:`default_models` of ``o``; a spec with ``kind: dncnn`` is a DnCNN)."""
    specs = dict(default_models(o.width, o.depth, o.gammas, o.residual, o.higher_order, o.step)
                 if models is None else models)
    if o.include_dncnn:
        specs = {"dncnn": dict(kind="dncnn", width=o.dncnn_width_resolved,
                               depth=o.dncnn_depth, batch_norm=o.dncnn_batch_norm), **specs}
    out = {}
    for name, spec in specs.items():
        spec = dict(spec)
        if spec.pop("kind", None) == "dncnn":
            entry = {"name": "dncnn", "in_channels": 1, "width": spec["width"],
                     "depth": spec["depth"], "batch_norm": spec.get("batch_norm", True),
                     "seed": o.seed}
        else:
            entry = {"name": "nonexpansive-denoiser", "in_channels": 1,
                     "power_size": [o.crop, o.crop], "seed": o.seed, **spec}
        out[name] = (spec, entry)
    return out


def _train_and_test(name: str, spec_entry: tuple[dict, dict], o: DenoiseConfig,
                    images: Images, hooks: DenoiseHooks) -> dict:
    """Build one network from the catalogue, train it (in ``runs_dir/name``) and test it."""
    from spinv.training.models import build_builtin

    spec, entry = spec_entry
    t0 = time.perf_counter()
    model = build_builtin(entry["name"], {k: v for k, v in entry.items() if k != "name"},
                          None).to(images.train.device)
    init_s = time.perf_counter() - t0
    run_dir = None if hooks.runs_dir is None else Path(hooks.runs_dir) / name
    info = train_denoiser(model, images.train, o.training(),
                          progress=staged(hooks.progress, name), run_dir=run_dir)
    ev = evaluate_denoiser(model, images.test, images.noisy_test)
    cert = (model.certified_lipschitz() if hasattr(model, "certified_lipschitz")
            else model.lipschitz_upper_bound())
    hooks.log(f"{name}: {ev['psnr_mean']:.2f} +- {ev['psnr_std']:.2f} dB, certified Lip "
              f"{cert:.4g}, {info['train_seconds']:.0f} s")
    return dict(ev, **info, init_seconds=init_s, spec=spec, certified_lipschitz=cert,
                parameters=sum(p.numel() for p in model.parameters()))


def _record(o: DenoiseConfig, images: Images, device: torch.device) -> dict:
    """The settings as ``results.json`` records them (``config``)."""
    return dict(sigma=o.sigma, steps=o.steps, width=o.width, depth=o.depth, crop=o.crop,
                batch_size=o.batch_size, lr=o.lr, lr_schedule=o.lr_schedule,
                test_size=o.test_size, seed=o.seed, dncnn_depth=o.dncnn_depth,
                dncnn_width=o.dncnn_width_resolved, dncnn_batch_norm=o.dncnn_batch_norm,
                n_train=int(images.train.shape[0]), n_test=int(images.test.shape[0]),
                device=str(device))


def denoising_experiment(options: DenoiseConfig | None = None,
                         models: dict[str, dict] | None = None,
                         hooks: DenoiseHooks | None = None) -> dict:
    """Train and test every denoiser (settings ``options``, default :class:`DenoiseConfig`
    on the CPU); returns a JSON-able dict of PSNRs, certificates and timings.

    ``models`` defaults to :func:`default_models` of the options. ``hooks``
    (:class:`DenoiseHooks`) receive log lines, per-step progress and the partial result after
    every method (e.g. to refresh a report while a long run goes on); with
    ``hooks.runs_dir`` calling again with the same folder resumes unfinished trainings and
    reloads finished ones.
    """
    o = DenoiseConfig(device="cpu") if options is None else options
    if not isinstance(o, DenoiseConfig):
        raise TypeError(f"options: expected DenoiseConfig, got {type(o).__name__}")
    hooks = DenoiseHooks() if hooks is None else hooks
    device = resolve_device(o.device)
    images = _images(o, device)
    result: dict[str, Any] = {"config": _record(o, images, device), "machine": machine_info(),
                              "noisy": evaluate_denoiser(lambda y: y, images.test,
                                                         images.noisy_test),
                              "models": {}}
    if o.include_tv:
        result["models"]["tv"] = _tv_entry(o, images, hooks.log)
        if hooks.on_save is not None:
            hooks.on_save(result)
    for name, spec_entry in model_entries(o, models).items():
        result["models"][name] = _train_and_test(name, spec_entry, o, images, hooks)
        if hooks.on_save is not None:
            hooks.on_save(result)
    return result
