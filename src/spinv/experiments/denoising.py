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

Run small experiments from the shell (in the background for anything beyond a smoke test)::

    python -m spinv.experiments.denoising --steps 400 --width 16 --out results.json

>>> r = toy_absolute_value(steps=30, seed=0)
>>> r["nonexpansive_max_slope"] <= 1.0 + 1e-5
True
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

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
    "pnp_convergence_experiment",
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2)
    os.replace(tmp, path)


def toy_absolute_value(n_points: int = 6, steps: int = 2000, lr: float = 1e-2, seed: int = 0,
                       plot: str | os.PathLike | None = None) -> dict:
    """Fig. 3.1: approximate :math:`|x|` on [-1, 1] from ``n_points`` random samples.

    Both networks are trained with Adam on the squared error; the nonexpansive one is
    projected onto its certified constraints after every step. Returns a dict with the
    training points, a grid, both fitted curves, final training losses and the largest slope
    of each curve on the grid.
    """
    gen = torch.Generator().manual_seed(seed)
    xs = torch.rand(n_points, 1, generator=gen) * 2 - 1
    ys = xs.abs()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        xi = NonexpansiveResNet(1, depth=10, hidden=10, method="euler", step=2.0, kernel_size=1)
        plain = _PlainResNet(10, 10)
    xi.enforce_constraints()

    def xi_fn(x):  # scalars as (B, 1, 1, 1) images, A_i a 1x1 convolution 1 -> 10 channels
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
        _plot_toy(out, plot)
    return out


def _plot_toy(r: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    g = np.asarray(r["grid"])
    ax.plot(g, np.abs(g), "k:", label="|x|")
    ax.plot(g, r["nonexpansive"], label="nonexpansive ResNet")
    ax.plot(g, r["unconstrained"], label="unconstrained ResNet")
    ax.plot(r["train_x"], r["train_y"], "ko", label="training points")
    ax.legend()
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=path.suffix or ".png", dir=path.parent)
    os.close(fd)
    fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ denoising


@torch.no_grad()
def tv_denoise(y: torch.Tensor, alpha: float, iterations: int = 200) -> torch.Tensor:
    """:math:`\\arg\\min_u \\tfrac12\\|u-y\\|^2+\\alpha\\,TV(u)` (prox of TV, FISTA on the dual)."""
    from spinv.variational.tv import TV

    return TV(alpha=alpha).prox(y, 1.0, iterations=iterations)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    from spinv.metrics import psnr

    return psnr(x, ref, data_range=1.0)


def tune_tv_alpha(clean: torch.Tensor, noisy: torch.Tensor, grid=None) -> tuple[float, float]:
    """Grid search (log-spaced, then refined) of the TV weight maximising mean PSNR."""
    grid = list(np.logspace(-3, 0, 7)) if grid is None else list(grid)
    scores = {a: float(_psnr(tv_denoise(noisy, a), clean).mean()) for a in grid}
    best = max(scores, key=scores.get)
    for a in np.exp(np.linspace(math.log(best) - 0.6, math.log(best) + 0.6, 5)):
        scores[float(a)] = float(_psnr(tv_denoise(noisy, float(a)), clean).mean())
    best = max(scores, key=scores.get)
    return float(best), scores[best]


def _crops(images: torch.Tensor, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(images.shape[0], (n,), generator=gen)
    h, w = images.shape[-2:]
    top = torch.randint(h - size + 1, (n,), generator=gen)
    left = torch.randint(w - size + 1, (n,), generator=gen)
    return torch.stack([images[i, :, t:t + size, l_:l_ + size]
                        for i, t, l_ in zip(idx.tolist(), top.tolist(), left.tolist(),
                                            strict=True)])


def train_denoiser(model: nn.Module, images: torch.Tensor, sigma: float, steps: int,
                   batch_size: int = 5, crop: int = 32, lr: float = 1e-3, seed: int = 0,
                   residual_target: bool = False, gamma: float = 1.0) -> dict:
    """Adam on random crops with fresh noise; ``enforce_constraints()`` after each step.

    The loss is :math:`\\|\\Phi(y)-u^*\\|^2` for the denoiser :math:`\\Phi` = ``model(y)``;
    for the residual variant of Eq. 3.6 this equals :math:`\\|\\gamma\\Gamma(y)-(y-u^*)\\|^2`.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    enforce = getattr(model, "enforce_constraints", None)
    model.train()
    losses, t0 = [], time.perf_counter()
    for _ in range(steps):
        clean = _crops(images, batch_size, crop, gen)
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        loss = ((model(noisy) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if callable(enforce):
            enforce()
        losses.append(float(loss.detach()))
    model.eval()
    return {"train_seconds": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-20:])),
            "steps": steps}


@torch.no_grad()
def evaluate_denoiser(fn, clean: torch.Tensor, noisy: torch.Tensor) -> dict:
    """Mean, std and per-image PSNR (dB, data range 1) of ``fn(noisy)`` against ``clean``."""
    p = torch.cat([_psnr(fn(noisy[i:i + 1]), clean[i:i + 1]) for i in range(clean.shape[0])])
    return {"psnr_mean": float(p.mean()), "psnr_std": float(p.std()) if len(p) > 1 else 0.0,
            "psnr": p.tolist()}


def default_models(width: int, depth: int, gammas=(1.0, 1.5, 1.99)) -> dict[str, dict]:
    """The model grid of Fig. 3.2 / Table 3.1: Euler with every gamma, residual and not;
    Heun and RK4 residual with gamma = 1.99; DnCNN (20 layers) is added by the experiment."""
    models = {}
    for g in gammas:
        for res in (True, False):
            models[f"euler-{'R' if res else 'NR'}-g{g}"] = dict(method="euler", gamma=g,
                                                                 residual=res)
    for m in ("heun", "rk4"):
        models[f"{m}-R-g{gammas[-1]}"] = dict(method=m, gamma=gammas[-1], residual=True)
    return {k: dict(v, width=width, depth=depth) for k, v in models.items()}


def denoising_experiment(sigma: float = 0.5, steps: int = 300, width: int = 16,
                         depth: int = 10, dncnn_depth: int = 20, crop: int = 32,
                         batch_size: int = 5, lr: float = 1e-3, test_size: int | None = 128,
                         models: dict[str, dict] | None = None, include_dncnn: bool = True,
                         include_tv: bool = True, seed: int = 0,
                         out: str | os.PathLike | None = None, log=print) -> dict:
    """Train and test every denoiser; returns (and writes to ``out``, atomically, after each
    model) a JSON-able dict of PSNRs, certificates and timings.

    ``test_size``: centre crop of the test images (``None``: full 256 x 256).
    """
    from spinv.data import load_dataset

    if sigma <= 0 or steps < 0 or width < 1 or depth < 1:
        raise ValueError(f"sigma={sigma}, steps={steps}, width={width}, depth={depth}: expected "
                         "sigma > 0, steps >= 0, width >= 1, depth >= 1")
    train = torch.from_numpy(load_dataset("natural", "train"))[:, None]
    test = torch.from_numpy(load_dataset("natural", "test"))[:, None]
    if test_size is not None:
        h, w = test.shape[-2:]
        t, l_ = (h - test_size) // 2, (w - test_size) // 2
        test = test[..., t:t + test_size, l_:l_ + test_size]
    gen = torch.Generator().manual_seed(seed + 12345)
    noisy_test = test + sigma * torch.randn(test.shape, generator=gen)
    result = {
        "config": dict(sigma=sigma, steps=steps, width=width, depth=depth, crop=crop,
                       batch_size=batch_size, lr=lr, test_size=test_size, seed=seed,
                       dncnn_depth=dncnn_depth, n_train=int(train.shape[0]),
                       n_test=int(test.shape[0])),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "noisy": evaluate_denoiser(lambda y: y, test, noisy_test),
        "models": {},
    }

    def save():
        if out is not None:
            _atomic_json(out, result)

    if include_tv:
        g2 = torch.Generator().manual_seed(seed + 1)
        tr = _crops(train, 8, 96, g2)
        alpha, train_psnr = tune_tv_alpha(tr, tr + sigma * torch.randn(tr.shape, generator=g2))
        t0 = time.perf_counter()
        ev = evaluate_denoiser(lambda y: tv_denoise(y, alpha), test, noisy_test)
        result["models"]["tv"] = dict(ev, alpha=alpha, train_psnr=train_psnr,
                                      eval_seconds=time.perf_counter() - t0)
        log(f"tv alpha={alpha:.4g}: {ev['psnr_mean']:.2f} dB")
        save()
    specs = dict(default_models(width, depth) if models is None else models)
    if include_dncnn:
        specs = {"dncnn": dict(kind="dncnn", width=width, depth=dncnn_depth), **specs}
    for name, spec in specs.items():
        spec = dict(spec)
        t0 = time.perf_counter()
        if spec.pop("kind", None) == "dncnn":
            model = DnCNN(1, width=spec["width"], depth=spec["depth"],
                          batch_norm=spec.get("batch_norm", True), seed=seed)
        else:
            model = NonexpansiveDenoiser(1, power_size=(crop, crop), seed=seed, **spec)
        init_s = time.perf_counter() - t0
        info = train_denoiser(model, train, sigma, steps, batch_size, crop, lr, seed)
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


def pnp_convergence_experiment(problem: str = "ct", size: int = 32, iterations: int = 100,
                               denoisers: dict | None = None, seed: int = 0,
                               plot: str | os.PathLike | None = None,
                               out: str | os.PathLike | None = None) -> dict:
    """Fixed-point residual of PnP-PGD (Algorithm 6) with averaged vs unconstrained denoisers.

    ``problem`` ``"ct"`` (:class:`~spinv.operators.ParallelBeamCT`, ``size // 2`` angles) or
    ``"mri"`` (:class:`~spinv.operators.SubsampledFourier`, 30 % random mask), ground truth a
    centre crop of the first natural test image. ``denoisers`` maps names to callables; the
    default compares a certified :math:`\\gamma/2`-averaged residual denoiser (``tied=True``,
    :math:`\\gamma = 1.99`), the untied residual nonexpansive denoiser (Lipschitz
    :math:`1+\\gamma`, not averaged) and a DnCNN, all untrained (seeded) weights.
    """
    from spinv.data import load_dataset
    from spinv.learned.pnp import compare_fixed_point_residuals

    img = torch.from_numpy(load_dataset("natural", "test"))[:1, None]
    h, w = img.shape[-2:]
    x = img[..., (h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2].contiguous()
    gen = torch.Generator().manual_seed(seed)
    if problem == "ct":
        from spinv.operators import ParallelBeamCT

        op = ParallelBeamCT(size, n_angles=max(size // 2, 4))
        y = op(x)
        y = y + 0.01 * y.abs().max() * torch.randn(y.shape, generator=gen)
    elif problem == "mri":
        from spinv.operators import SubsampledFourier

        op = SubsampledFourier((torch.rand(size, size, generator=gen) < 0.3).float())
        y = op(x)
    else:
        raise ValueError(f"problem={problem!r}: expected 'ct' or 'mri'")
    if denoisers is None:
        denoisers = {
            "averaged (tied, gamma=1.99)": NonexpansiveDenoiser(
                1, width=8, depth=4, tied=True, alpha=0.5, gamma=1.99, seed=seed).eval(),
            "nonexpansive Gamma, residual (untied)": NonexpansiveDenoiser(
                1, width=8, depth=4, gamma=1.99, seed=seed).eval(),
            "DnCNN (unconstrained)": DnCNN(1, width=8, depth=8, seed=seed).eval(),
        }
    results = compare_fixed_point_residuals(op, y, denoisers, path=plot, method="pgd",
                                            iterations=iterations)
    summary = {"problem": problem, "size": size, "iterations": iterations, "seed": seed,
               "runs": {}}
    for name, r in results.items():
        d = denoisers[name]
        finite = [v if math.isfinite(v) else None for v in r.relative_residuals]
        summary["runs"][name] = {
            "relative_residuals": finite,  # None where the iteration overflowed (inf / nan)
            "final_relative_residual": finite[-1],
            "certified_averagedness": getattr(d, "certified_averagedness", lambda: None)(),
        }
    if out is not None:
        _atomic_json(out, summary)
    return summary


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - CLI wrapper
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--dncnn-depth", type=int, default=20)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--test-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--toy-plot", default=None)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.toy_plot:
        r = toy_absolute_value(plot=a.toy_plot, seed=a.seed)
        print(f"toy: slopes nonexpansive {r['nonexpansive_max_slope']:.3f}, unconstrained "
              f"{r['unconstrained_max_slope']:.3f}; losses {r['train_loss']}")
    denoising_experiment(a.sigma, a.steps, a.width, a.depth, a.dncnn_depth, a.crop,
                         a.batch_size, a.lr, a.test_size, seed=a.seed, out=a.out,
                         log=lambda s: print(s, flush=True))


if __name__ == "__main__":  # pragma: no cover
    main()
