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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser, NonexpansiveResNet

__all__ = [
    "toy_absolute_value",
    "tv_denoise",
    "tune_tv_alpha",
    "train_denoiser",
    "evaluate_denoiser",
    "denoising_experiment",
    "default_models",
    "machine_info",
]


class _PlainResNet(nn.Module):
    """Unconstrained ResNet :math:`z\\leftarrow z+B_i\\sigma(A_iz+b_i)` (§3.3.1)."""

    def __init__(self, depth: int = 10, hidden: int = 10) -> None:
        super().__init__()
        self.a = nn.ModuleList(nn.Linear(1, hidden) for _ in range(depth))
        self.b = nn.ModuleList(nn.Linear(hidden, 1, bias=False) for _ in range(depth))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for a, b in zip(self.a, self.b, strict=True):
            z = z + b(torch.relu(a(z)))
        return z


def _atomic_json(path: str | os.PathLike, obj) -> None:
    from spinv.atomic import atomic_write_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


def toy_absolute_value(n_points: int = 6, steps: int = 2000, lr: float = 1e-2, seed: int = 0,
                       plot: str | os.PathLike | None = None, depth: int = 10,
                       hidden: int = 10, step: float = 2.0,
                       callback: Callable[[int], None] | None = None) -> dict:
    """Fig. 3.1: approximate :math:`|x|` on [-1, 1] from ``n_points`` random samples.

    Both networks (``depth`` layers, :math:`A_i\\in\\mathbb R^{hidden\\times 1}`, step ``h``)
    are trained with Adam on the squared error; the nonexpansive one is projected onto its
    certified constraints after every step. Returns a dict with the training points, a grid,
    both fitted curves, final training losses and the largest slope of each curve on the grid.
    ``callback(1)`` is called after every optimiser step (progress bars).
    """
    gen = torch.Generator().manual_seed(seed)
    xs = torch.rand(n_points, 1, generator=gen) * 2 - 1
    ys = xs.abs()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        xi = NonexpansiveResNet(1, depth=depth, hidden=hidden, method="euler", step=step,
                                kernel_size=1)
        plain = _PlainResNet(depth, hidden)
    xi.enforce_constraints()

    def xi_fn(x):  # scalars as (B, 1, 1, 1) images, A_i a 1x1 convolution 1 -> hidden channels
        return xi(x.view(-1, 1, 1, 1)).view(-1, 1)

    losses = {}
    for name, model, fn in (("nonexpansive", xi, xi_fn), ("unconstrained", plain, plain)):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            loss = ((fn(xs) - ys) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if model is xi:
                xi.enforce_constraints()
            if callback is not None:
                callback(1)
        with torch.no_grad():
            losses[name] = float(((fn(xs) - ys) ** 2).mean())
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


def _crops(images: torch.Tensor, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop={size}: expected at most the image size {min(h, w)}")
    idx = torch.randint(images.shape[0], (n,), generator=gen)
    top = torch.randint(h - size + 1, (n,), generator=gen)
    left = torch.randint(w - size + 1, (n,), generator=gen)
    return torch.stack([images[i, :, t:t + size, l_:l_ + size]
                        for i, t, l_ in zip(idx.tolist(), top.tolist(), left.tolist(),
                                            strict=True)])


def train_denoiser(model: nn.Module, images: torch.Tensor, sigma: float, steps: int,
                   batch_size: int = 5, crop: int = 32, lr: float = 1e-3, seed: int = 0,
                   residual_target: bool = False, gamma: float = 1.0,
                   lr_schedule: str = "constant",
                   callback: Callable[[int], None] | None = None) -> dict:
    """Adam on random crops with fresh noise; ``enforce_constraints()`` after each step.

    The loss is :math:`\\|\\Phi(y)-u^*\\|^2` for the denoiser :math:`\\Phi` = ``model(y)``;
    for the residual variant of Eq. 3.6 this equals :math:`\\|\\gamma\\Gamma(y)-(y-u^*)\\|^2`.
    Crops and noise are drawn on the CPU from ``seed`` and moved to ``images``' device.
    ``lr_schedule`` ``"cosine"`` anneals the rate to 0 over ``steps``. ``callback(1)`` is
    called after every step. (``residual_target`` and ``gamma`` are unused, kept for
    compatibility: the residual form is built into the model.)
    """
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule={lr_schedule!r}: expected 'constant' or 'cosine'")
    gen = torch.Generator().manual_seed(seed)
    cpu_images = images.detach().cpu()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
             if lr_schedule == "cosine" else None)
    enforce = getattr(model, "enforce_constraints", None)
    model.train()
    losses, t0 = [], time.perf_counter()
    for _ in range(steps):
        clean = _crops(cpu_images, batch_size, crop, gen)
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        clean, noisy = clean.to(images.device), noisy.to(images.device)
        loss = ((model(noisy) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if callable(enforce):
            enforce()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(1)
    model.eval()
    return {"train_seconds": time.perf_counter() - t0,
            "final_loss": float(np.mean(losses[-20:])) if losses else None, "steps": steps}


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


def denoising_experiment(sigma: float = 0.5, steps: int = 300, width: int = 16,
                         depth: int = 10, dncnn_depth: int = 20, crop: int = 32,
                         batch_size: int = 5, lr: float = 1e-3, test_size: int | None = 128,
                         models: dict[str, dict] | None = None, include_dncnn: bool = True,
                         include_tv: bool = True, seed: int = 0,
                         out: str | os.PathLike | None = None, log=print, *,
                         dncnn_width: int | None = None, dncnn_batch_norm: bool = True,
                         lr_schedule: str = "constant", n_test: int | None = None,
                         tv_iterations: int = 200, tv_tune_crops: int = 8,
                         device: torch.device | str | None = None,
                         callback: Callable[[int], None] | None = None,
                         on_save: Callable[[dict], None] | None = None) -> dict:
    """Train and test every denoiser; returns (and writes to ``out``, atomically, after each
    model) a JSON-able dict of PSNRs, certificates and timings.

    ``test_size``: centre crop of the test images (``None``: full 256 x 256); ``n_test``: the
    first test images used (``None``: all). ``models`` defaults to :func:`default_models`.
    ``callback(1)`` is called after every training step, ``on_save(result)`` after every
    method (e.g. to refresh a report while a long run goes on).
    """
    from spinv.data import load_dataset

    if sigma <= 0 or steps < 0 or width < 1 or depth < 1:
        raise ValueError(f"sigma={sigma}, steps={steps}, width={width}, depth={depth}: expected "
                         "sigma > 0, steps >= 0, width >= 1, depth >= 1")
    device = torch.device("cpu") if device is None else torch.device(device)
    train = torch.from_numpy(load_dataset("natural", "train"))[:, None]
    test = torch.from_numpy(load_dataset("natural", "test"))[:, None]
    if n_test is not None:
        test = test[:n_test]
    if test_size is not None:
        h, w = test.shape[-2:]
        if test_size > min(h, w):
            raise ValueError(f"test_size={test_size}: expected at most {min(h, w)}")
        t, l_ = (h - test_size) // 2, (w - test_size) // 2
        test = test[..., t:t + test_size, l_:l_ + test_size]
    gen = torch.Generator().manual_seed(seed + 12345)
    noisy_test = test + sigma * torch.randn(test.shape, generator=gen)
    train, test, noisy_test = train.to(device), test.to(device), noisy_test.to(device)
    dncnn_width = width if dncnn_width is None else dncnn_width
    result: dict[str, Any] = {
        "config": dict(sigma=sigma, steps=steps, width=width, depth=depth, crop=crop,
                       batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
                       test_size=test_size, seed=seed, dncnn_depth=dncnn_depth,
                       dncnn_width=dncnn_width, dncnn_batch_norm=dncnn_batch_norm,
                       n_train=int(train.shape[0]), n_test=int(test.shape[0]),
                       device=str(device)),
        "machine": machine_info(),
        "noisy": evaluate_denoiser(lambda y: y, test, noisy_test),
        "models": {},
    }

    def save():
        if out is not None:
            _atomic_json(out, result)
        if on_save is not None:
            on_save(result)

    if include_tv:
        g2 = torch.Generator().manual_seed(seed + 1)
        tr = _crops(train.cpu(), tv_tune_crops, min(96, *train.shape[-2:]), g2)
        tr_noisy = tr + sigma * torch.randn(tr.shape, generator=g2)
        alpha, train_psnr = tune_tv_alpha(tr.to(device), tr_noisy.to(device),
                                          iterations=tv_iterations)
        t0 = time.perf_counter()
        ev = evaluate_denoiser(lambda y: tv_denoise(y, alpha, tv_iterations), test, noisy_test)
        result["models"]["tv"] = dict(ev, alpha=alpha, train_psnr=train_psnr,
                                      eval_seconds=time.perf_counter() - t0)
        log(f"tv alpha={alpha:.4g}: {ev['psnr_mean']:.2f} dB")
        save()
    specs = dict(default_models(width, depth) if models is None else models)
    if include_dncnn:
        specs = {"dncnn": dict(kind="dncnn", width=dncnn_width, depth=dncnn_depth,
                               batch_norm=dncnn_batch_norm), **specs}
    for name, spec in specs.items():
        spec = dict(spec)
        t0 = time.perf_counter()
        if spec.pop("kind", None) == "dncnn":
            model = DnCNN(1, width=spec["width"], depth=spec["depth"],
                          batch_norm=spec.get("batch_norm", True), seed=seed)
        else:
            model = NonexpansiveDenoiser(1, power_size=(crop, crop), seed=seed, **spec)
        model = model.to(device)
        init_s = time.perf_counter() - t0
        info = train_denoiser(model, train, sigma, steps, batch_size, crop, lr, seed,
                              lr_schedule=lr_schedule, callback=callback)
        ev = evaluate_denoiser(model, test, noisy_test)
        cert = (model.certified_lipschitz() if hasattr(model, "certified_lipschitz")
                else model.lipschitz_upper_bound())
        result["models"][name] = dict(ev, **info, init_seconds=init_s, spec=spec,
                                      certified_lipschitz=cert,
                                      parameters=sum(p.numel() for p in model.parameters()))
        log(f"{name}: {ev['psnr_mean']:.2f} +- {ev['psnr_std']:.2f} dB, certified Lip "
            f"{cert:.4g}, {info['train_seconds']:.0f} s")
        save()
    return result
