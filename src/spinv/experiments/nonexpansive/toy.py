"""The toy problem of thesis §3.3.1 (Fig. 3.1): fit :math:`|x|` from a few points with the
nonexpansive ResNet :math:`\\Xi` of Algorithm 7 and with an unconstrained ResNet.

:func:`toy_absolute_value` trains both networks (Adam, full batch, on
:func:`spinv.training.engine.fit`; :math:`\\Xi` is projected onto its certified constraints
after every step) and reports the fitted curves and their largest slope on a grid (a lower
bound of the Lipschitz constant: at most 1 for :math:`\\Xi`). :func:`run_toy` is the experiment
``nonexpansive toy`` of the protocol (:mod:`spinv.experiments.protocol`).

>>> r = toy_absolute_value(ToyConfig(steps=30))
>>> r["nonexpansive_max_slope"] <= 1.0 + 1e-5
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from spinv.experiments.nonexpansive.config import ToyConfig, settings_record, setup_device
from spinv.experiments.protocol import Progress, staged
from spinv.nn.nonexpansive import NonexpansiveResNet

__all__ = ["PlainResNet", "PointwiseSquaredError", "run_toy", "toy_absolute_value"]


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


def _networks(c: ToyConfig) -> dict[str, tuple[nn.Module, PointwiseSquaredError, dict]]:
    """``{name: (network, objective, catalogue entry)}``, weights drawn from ``c.seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(c.seed)
        xi = NonexpansiveResNet(1, depth=c.depth, hidden=c.hidden, method="euler",
                                step=c.step, kernel_size=1)
        plain = PlainResNet(c.depth, c.hidden)
    xi.enforce_constraints()
    return {
        "nonexpansive": (xi, PointwiseSquaredError(True),
                         {"name": "nonexpansive-resnet", "channels": 1, "depth": c.depth,
                          "hidden": c.hidden, "method": "euler", "step": c.step,
                          "kernel_size": 1}),
        "unconstrained": (plain, PointwiseSquaredError(False),
                          {"name": "plain-resnet", "depth": c.depth, "hidden": c.hidden}),
    }


def _fit(name: str, network: tuple, data, c: ToyConfig, progress: Progress | None,
         runs_dir: Path | None) -> None:
    """Train one network of the toy fit on the engine (in ``runs_dir/name`` when given)."""
    from spinv.training.engine import FitOptions, fit
    from spinv.training.rundir import is_run, open_run

    model, objective, spec = network
    options = FitOptions(steps=c.steps, lr=c.lr, seed=c.seed)
    report = staged(progress, f"toy {name}")
    if runs_dir is None:
        fit(model, data, options, objective=objective, progress=report)
        return
    config = {"name": f"toy/{name}", "model": spec,
              "data": {"n_points": c.n_points, "seed": c.seed},
              "train": {"steps": c.steps, "lr": c.lr, "lr_schedule": "constant"}}
    run_dir = runs_dir / name
    with open_run(run_dir, config, resume=is_run(run_dir)) as run:
        fit(model, data, options, objective=objective, run=run, progress=report)


def _max_slope(f: torch.Tensor, grid: torch.Tensor) -> float:
    return float(((f[1:] - f[:-1]).abs() / (grid[1:, 0] - grid[:-1, 0])).max())


def toy_absolute_value(config: ToyConfig | None = None, plot: str | os.PathLike | None = None,
                       progress: Progress | None = None,
                       runs_dir: str | os.PathLike | None = None) -> dict:
    """Fig. 3.1: approximate :math:`|x|` on [-1, 1] from ``config.n_points`` random samples
    (module docstring; settings :class:`ToyConfig`, default: the thesis').

    Returns the training points, a grid of 801 points in [-2, 2], both fitted curves, final
    training losses, the largest slope of each curve on the grid and :math:`\\Xi`'s certified
    Lipschitz bound; ``plot`` writes the figure. ``progress(step, total, scalars)`` after every
    training step (stage ``toy <network>``). With ``runs_dir`` the networks leave the run
    directories ``runs_dir/nonexpansive`` (catalogue name ``nonexpansive-resnet``) and
    ``runs_dir/unconstrained`` (resumed when they exist).
    """
    from spinv.training.sources_images import FullBatch

    c = ToyConfig() if config is None else config
    gen = torch.Generator().manual_seed(c.seed)
    xs = torch.rand(c.n_points, 1, generator=gen) * 2 - 1
    ys = xs.abs()
    networks = _networks(c)
    data = FullBatch((ys, xs), "toy |x| points")
    losses = {}
    for name, network in networks.items():
        _fit(name, network, data, c, progress, None if runs_dir is None else Path(runs_dir))
        with torch.no_grad():
            losses[name] = float(network[1](network[0], (ys, xs))[0])
    xi, plain = networks["nonexpansive"][0], networks["unconstrained"][0]
    grid = torch.linspace(-2, 2, 801).view(-1, 1)
    with torch.no_grad():  # scalars as (B, 1, 1, 1) images through Xi's 1x1 convolutions
        f_xi, f_plain = xi(grid.view(-1, 1, 1, 1)).view(-1), plain(grid).view(-1)
    out = {
        "train_x": xs.view(-1).tolist(), "train_y": ys.view(-1).tolist(),
        "grid": grid.view(-1).tolist(), "nonexpansive": f_xi.tolist(),
        "unconstrained": f_plain.tolist(), "train_loss": losses,
        "nonexpansive_max_slope": _max_slope(f_xi, grid),
        "unconstrained_max_slope": _max_slope(f_plain, grid),
        "certified_lipschitz": xi.certified_lipschitz(),
    }
    if plot is not None:
        from spinv.experiments.nonexpansive.report import plot_toy

        plot_toy(out, plot)
    return out


def run_toy(config: ToyConfig, out: Path, progress: Progress | None = None,
            resume: bool = False) -> dict:
    """The experiment ``nonexpansive toy``: :func:`toy_absolute_value` with ``config``;
    writes ``results.json``, ``results.md`` and ``toy_fit.png`` to ``out`` and the run
    directories to ``out/runs`` (an existing one is always resumed, ``resume`` or not)."""
    from spinv.experiments.nonexpansive.denoising import machine_info, write_json
    from spinv.experiments.nonexpansive.report import toy_markdown

    setup_device(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = toy_absolute_value(config, out / "toy_fit.png", progress, out / "runs")
    payload = {"command": "toy", "config": settings_record(config), "machine": machine_info(),
               "seconds": time.perf_counter() - t0, "result": r}
    write_json(out / "results.json", payload)
    toy_markdown(r, config, out / "results.md")
    return payload
