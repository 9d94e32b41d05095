"""Denoising experiments of thesis §3.3: the toy |x| problem (Fig. 3.1), and PSNR of TV,
DnCNN and nonexpansive Euler/Heun/RK4 denoisers (Fig. 3.2, Table 3.1) at small scale.

- :func:`toy_absolute_value`: fit :math:`|\\cdot|` from 6 random points with the nonexpansive
  ResNet :math:`\\Xi` of Algorithm 7 (:math:`h=2`, it = 10, :math:`A_i\\in\\mathbb R^{10\\times1}`)
  and the unconstrained ResNet :math:`z\\leftarrow z+B_i\\sigma(A_iz+b_i)`; report the fitted
  curves and their largest slope on a grid (a lower bound of the Lipschitz constant).
- :func:`denoising_experiment`: train on random crops of ``spinv.data.load_dataset("natural",
  "train")`` with fresh Gaussian noise each step, test on the fixed test split; TV denoising
  (:math:`\\arg\\min_u\\frac12\\|u-y\\|^2+\\alpha\\,TV(u)`, :class:`spinv.variational.tv.TV` prox,
  :math:`\\alpha` tuned on training images), DnCNN (residual, Eq. 3.6 with :math:`\\gamma=1`), and
  :class:`~spinv.nn.nonexpansive.NonexpansiveDenoiser` trained by Eq. 3.5 (non-residual) or
  Eq. 3.6 (residual), Adam with constraint enforcement after every step.

Every network is trained by the training engine (:func:`spinv.training.engine.fit`; the
denoisers through :func:`spinv.experiments.denoiser_training.train_denoiser`) and, given a
folder for runs, leaves a run directory per network that a repeated call resumes.
The config-driven commands (``spinv nonexpansive toy|denoise``) are in
:mod:`spinv.experiments.nonexpansive_runs`; the PnP experiments in :mod:`spinv.experiments.pnp`.

>>> r = toy_absolute_value(steps=30, seed=0)
>>> r["nonexpansive_max_slope"] <= 1.0 + 1e-5
True
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spinv.experiments.denoiser_training import DenoiserTraining, train_denoiser
from spinv.nn.nonexpansive import NonexpansiveResNet
from spinv.training.sources_images import random_crops

__all__ = [
    "DenoiseExperiment",
    "PlainResNet",
    "PointwiseSquaredError",
    "DenoiserTraining",
    "toy_absolute_value",
    "tv_denoise",
    "tune_tv_alpha",
    "train_denoiser",
    "evaluate_denoiser",
    "denoising_experiment",
    "default_models",
    "machine_info",
    "write_json",
]


class PlainResNet(nn.Module):
    """Unconstrained ResNet :math:`z\\leftarrow z+B_i\\sigma(A_iz+b_i)` (§3.3.1)."""

    def __init__(self, depth: int = 10, hidden: int = 10) -> None:
        super().__init__()
        self.a = nn.ModuleList(nn.Linear(1, hidden) for _ in range(depth))
        self.b = nn.ModuleList(nn.Linear(hidden, 1, bias=False) for _ in range(depth))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for a, b in zip(self.a, self.b, strict=True):
            z = z + b(torch.relu(a(z)))
        return z


class PointwiseSquaredError:
    """Objective of the toy fit: ``mean((model(x) - y)^2)`` on ``(y, x)`` batches of scalars
    ``(n, 1)``; with ``as_images`` the scalars pass the model as ``(n, 1, 1, 1)`` images (the
    nonexpansive ResNet :math:`\\Xi` with :math:`1\\times1` convolutions)."""

    def __init__(self, as_images: bool) -> None:
        self.as_images = bool(as_images)

    def __call__(self, model: Callable, batch: tuple) -> tuple[torch.Tensor, dict]:
        ys, xs = batch
        out = model(xs.view(-1, 1, 1, 1)).view(-1, 1) if self.as_images else model(xs)
        return ((out - ys) ** 2).mean(), {}

    def __repr__(self) -> str:
        return f"PointwiseSquaredError(as_images={self.as_images})"


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (creating the parent folders)."""
    from spinv.atomic import atomic_write_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


def _fit_toy(model: nn.Module, objective: PointwiseSquaredError, data, options,
             callback: Callable[[int], None] | None, run_dir: Path | None,
             config: dict) -> None:
    """One network of the toy fit on the engine (in a run directory when ``run_dir``)."""
    from spinv.training.engine import fit
    from spinv.training.rundir import is_run, open_run

    progress = None if callback is None else (lambda k, n, rec: callback(1))
    if run_dir is None:
        fit(model, data, options, objective=objective, progress=progress)
        return
    with open_run(run_dir, config, resume=is_run(run_dir)) as run:
        fit(model, data, options, objective=objective, run=run, progress=progress)


def toy_absolute_value(n_points: int = 6, steps: int = 2000, lr: float = 1e-2, seed: int = 0,
                       plot: str | os.PathLike | None = None, depth: int = 10,
                       hidden: int = 10, step: float = 2.0,
                       callback: Callable[[int], None] | None = None,
                       runs_dir: str | os.PathLike | None = None) -> dict:
    """Fig. 3.1: approximate :math:`|x|` on [-1, 1] from ``n_points`` random samples.

    Both networks (``depth`` layers, :math:`A_i\\in\\mathbb R^{hidden\\times 1}`, step ``h``)
    are trained with Adam on the squared error of all points (full batch, on the training
    engine); the nonexpansive one is projected onto its certified constraints after every step.
    Returns a dict with the training points, a grid, both fitted curves, final training losses
    and the largest slope of each curve on the grid. ``callback(1)`` is called after every
    optimiser step (progress bars). With ``runs_dir`` the networks leave the run directories
    ``runs_dir/nonexpansive`` (catalogue name ``nonexpansive-resnet``) and
    ``runs_dir/unconstrained``.
    """
    from spinv.training.engine import FitOptions
    from spinv.training.sources_images import FullBatch

    gen = torch.Generator().manual_seed(seed)
    xs = torch.rand(n_points, 1, generator=gen) * 2 - 1
    ys = xs.abs()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        xi = NonexpansiveResNet(1, depth=depth, hidden=hidden, method="euler", step=step,
                                kernel_size=1)
        plain = PlainResNet(depth, hidden)
    xi.enforce_constraints()
    data = FullBatch((ys, xs), "toy |x| points")
    models = {
        "nonexpansive": (xi, PointwiseSquaredError(True),
                         {"name": "nonexpansive-resnet", "channels": 1, "depth": depth,
                          "hidden": hidden, "method": "euler", "step": step, "kernel_size": 1}),
        "unconstrained": (plain, PointwiseSquaredError(False),
                          {"name": "plain-resnet", "depth": depth, "hidden": hidden}),
    }
    losses = {}
    for name, (model, objective, spec) in models.items():
        if steps > 0:
            config = {"name": f"toy/{name}", "model": spec,
                      "data": {"n_points": n_points, "seed": seed},
                      "train": {"steps": steps, "lr": lr, "lr_schedule": "constant"}}
            _fit_toy(model, objective, data, FitOptions(steps=steps, lr=lr, seed=seed),
                     callback, None if runs_dir is None else Path(runs_dir) / name, config)
        with torch.no_grad():
            losses[name] = float(objective(model, (ys, xs))[0])

    def xi_fn(x):  # scalars as (B, 1, 1, 1) images, A_i a 1x1 convolution 1 -> hidden channels
        return xi(x.view(-1, 1, 1, 1)).view(-1, 1)

    grid = torch.linspace(-2, 2, 801).view(-1, 1)
    with torch.no_grad():
        f_xi, f_plain = xi_fn(grid).view(-1), plain(grid).view(-1)

    def max_slope(f):
        return float(((f[1:] - f[:-1]).abs() / (grid[1:, 0] - grid[:-1, 0])).max())

    out = {
        "train_x": xs.view(-1).tolist(), "train_y": ys.view(-1).tolist(),
        "grid": grid.view(-1).tolist(), "nonexpansive": f_xi.tolist(),
        "unconstrained": f_plain.tolist(), "train_loss": losses,
        "nonexpansive_max_slope": max_slope(f_xi), "unconstrained_max_slope": max_slope(f_plain),
        "certified_lipschitz": xi.certified_lipschitz(),
    }
    if plot is not None:
        from spinv.experiments.nonexpansive_report import plot_toy

        plot_toy(out, plot)
    return out


# ------------------------------------------------------------------------------ denoising


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


@dataclass(frozen=True)
class DenoiseExperiment:
    """Settings of :func:`denoising_experiment`.

    Noise level ``sigma``; ``steps`` Adam steps per network (rate ``lr``, ``lr_schedule``
    ``"constant"`` or ``"cosine"``) on ``batch_size`` random ``crop x crop`` training crops;
    the nonexpansive denoisers have ``width`` channels and ``depth`` layers, the DnCNN
    (``include_dncnn``) ``dncnn_width`` (``None``: ``width``) channels, ``dncnn_depth`` layers
    and batch norm if ``dncnn_batch_norm``; TV (``include_tv``) runs ``tv_iterations``
    iterations with its weight tuned on ``tv_tune_crops`` training crops. Test images: the first
    ``n_test`` (``None``: all), centre-cropped to ``test_size`` (``None``: full size).
    ``seed`` fixes initialisation, crops and noise; ``device`` (``None``: CPU).
    """

    sigma: float = 0.5
    steps: int = 300
    width: int = 16
    depth: int = 10
    dncnn_depth: int = 20
    crop: int = 32
    batch_size: int = 5
    lr: float = 1e-3
    test_size: int | None = 128
    include_dncnn: bool = True
    include_tv: bool = True
    seed: int = 0
    dncnn_width: int | None = None
    dncnn_batch_norm: bool = True
    lr_schedule: str = "constant"
    n_test: int | None = None
    tv_iterations: int = 200
    tv_tune_crops: int = 8
    device: str | torch.device | None = None

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.steps < 0 or self.width < 1 or self.depth < 1:
            raise ValueError(f"sigma={self.sigma}, steps={self.steps}, width={self.width}, "
                             f"depth={self.depth}: expected sigma > 0, steps >= 0, width >= 1, "
                             "depth >= 1")

    @property
    def dncnn_width_resolved(self) -> int:
        """``dncnn_width``, or ``width`` when it is ``None``."""
        return self.width if self.dncnn_width is None else self.dncnn_width

    def training(self) -> DenoiserTraining:
        """The settings of :func:`train_denoiser` for every network."""
        return DenoiserTraining(self.sigma, self.steps, self.batch_size, self.crop, self.lr,
                                self.seed, self.lr_schedule)


def _images(o: DenoiseExperiment, device: torch.device) -> tuple[torch.Tensor, ...]:
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
    return train.to(device), test.to(device), noisy_test.to(device)


def _tv_entry(o: DenoiseExperiment, images: tuple[torch.Tensor, ...],
              log: Callable[[str], None]) -> dict:
    """TV denoising with :math:`\\alpha` tuned on noisy training crops (seed ``seed + 1``)."""
    from spinv.problems import denoising_problem

    train, test, noisy_test = images
    g2 = torch.Generator().manual_seed(o.seed + 1)
    tr = random_crops(train.cpu(), o.tv_tune_crops, min(96, *train.shape[-2:]), g2)
    tr_noisy = denoising_problem(o.sigma).simulate(tr, generator=g2)
    alpha, train_psnr = tune_tv_alpha(tr.to(train.device), tr_noisy.to(train.device),
                                      iterations=o.tv_iterations)
    t0 = time.perf_counter()
    ev = evaluate_denoiser(lambda y: tv_denoise(y, alpha, o.tv_iterations), test, noisy_test)
    log(f"tv alpha={alpha:.4g}: {ev['psnr_mean']:.2f} dB")
    return dict(ev, alpha=alpha, train_psnr=train_psnr, eval_seconds=time.perf_counter() - t0)


def model_entries(o: DenoiseExperiment,
                  models: dict[str, dict] | None = None) -> dict[str, tuple[dict, dict]]:
    """``{name: (spec, entry)}`` of the networks to train: the ``spec`` reported in the
    results and the catalogue ``entry`` (:mod:`spinv.training.models`: ``name`` and options)
    that builds the network. DnCNN (if ``include_dncnn``) first, then ``models`` (default
    :func:`default_models`; a spec with ``kind: dncnn`` is a DnCNN)."""
    specs = dict(default_models(o.width, o.depth) if models is None else models)
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


def _train_and_test(name: str, spec: dict, entry: dict, o: DenoiseExperiment,
                    images: tuple[torch.Tensor, ...], callback: Callable[[int], None] | None,
                    runs_dir: str | os.PathLike | None, log: Callable[[str], None]) -> dict:
    """Build one network from the catalogue, train it (in ``runs_dir/name``) and test it."""
    from spinv.training.models import build_builtin

    train, test, noisy_test = images
    t0 = time.perf_counter()
    model = build_builtin(entry["name"], {k: v for k, v in entry.items() if k != "name"},
                          None).to(train.device)
    init_s = time.perf_counter() - t0
    info = train_denoiser(model, train, o.training(), callback=callback,
                          run_dir=None if runs_dir is None else Path(runs_dir) / name)
    ev = evaluate_denoiser(model, test, noisy_test)
    cert = (model.certified_lipschitz() if hasattr(model, "certified_lipschitz")
            else model.lipschitz_upper_bound())
    log(f"{name}: {ev['psnr_mean']:.2f} +- {ev['psnr_std']:.2f} dB, certified Lip "
        f"{cert:.4g}, {info['train_seconds']:.0f} s")
    return dict(ev, **info, init_seconds=init_s, spec=spec, certified_lipschitz=cert,
                parameters=sum(p.numel() for p in model.parameters()))


def denoising_experiment(options: DenoiseExperiment | None = None,
                         models: dict[str, dict] | None = None, *,
                         out: str | os.PathLike | None = None, log=print,
                         callback: Callable[[int], None] | None = None,
                         on_save: Callable[[dict], None] | None = None,
                         runs_dir: str | os.PathLike | None = None) -> dict:
    """Train and test every denoiser (settings ``options``, default
    :class:`DenoiseExperiment`); returns (and writes to ``out``, atomically, after each
    model) a JSON-able dict of PSNRs, certificates and timings.

    ``models`` defaults to :func:`default_models`. ``callback(1)`` is called after every
    training step, ``on_save(result)`` after every method (e.g. to refresh a report while a
    long run goes on). With ``runs_dir`` every network leaves the run directory
    ``runs_dir/<name>``; calling again with the same folder resumes unfinished trainings and
    reloads finished ones.
    """
    o = DenoiseExperiment() if options is None else options
    if not isinstance(o, DenoiseExperiment):
        raise TypeError(f"options: expected DenoiseExperiment, got {type(o).__name__}")
    device = torch.device("cpu") if o.device is None else torch.device(o.device)
    images = _images(o, device)
    train, test, noisy_test = images
    config = dict(sigma=o.sigma, steps=o.steps, width=o.width, depth=o.depth, crop=o.crop,
                  batch_size=o.batch_size, lr=o.lr, lr_schedule=o.lr_schedule,
                  test_size=o.test_size, seed=o.seed, dncnn_depth=o.dncnn_depth,
                  dncnn_width=o.dncnn_width_resolved, dncnn_batch_norm=o.dncnn_batch_norm,
                  n_train=int(train.shape[0]), n_test=int(test.shape[0]), device=str(device))
    result: dict[str, Any] = {"config": config, "machine": machine_info(),
                              "noisy": evaluate_denoiser(lambda y: y, test, noisy_test),
                              "models": {}}

    def save():
        if out is not None:
            write_json(out, result)
        if on_save is not None:
            on_save(result)

    if o.include_tv:
        result["models"]["tv"] = _tv_entry(o, images, log)
        save()
    for name, (spec, entry) in model_entries(o, models).items():
        result["models"][name] = _train_and_test(name, spec, entry, o, images, callback,
                                                 runs_dir, log)
        save()
    return result
