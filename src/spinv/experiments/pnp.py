"""PnP experiments of thesis ch. 3: Plug-and-Play proximal gradient (Algorithm 6) with a
certified averaged denoiser vs an unconstrained DnCNN.

- :func:`pnp_pgd_with_metrics`: Algorithm 6, :math:`u_{k+1}=\\Phi(u_k-\\tau A^*(Au_k-y))`,
  recording the fixed-point residual :math:`\\|u_{k+1}-u_k\\|` and PSNR / SSIM of every iterate.
  With :math:`\\tau\\le 1/\\|A\\|^2` the gradient step is :math:`\\tfrac12`-averaged; with the
  :math:`\\gamma/2`-averaged residual denoiser :math:`\\mathrm{id}-\\gamma\\Gamma`
  (:class:`~spinv.nn.nonexpansive.NonexpansiveDenoiser`, ``tied=True``, ``alpha=0.5``,
  :math:`\\gamma<2`) the iteration map is averaged (Theorem 3.2.4), so by Krasnosel'skii--Mann
  the residual is nonincreasing and tends to 0 when a fixed point exists; a DnCNN has no such
  guarantee.
- :func:`run_pnp`: ``spinv nonexpansive pnp`` -- reconstruct a held-out ``ct-head`` slice
  (low-dose :func:`~spinv.problems.ct_problem`) or ``brain-t1`` slice
  (:func:`~spinv.problems.mri_problem`, variable-density lines) with denoisers trained briefly
  on the matching dataset's training split (or a given trained denoiser).
- :func:`pnp_convergence_experiment`: the earlier fixed-point-residual comparison on a natural
  image crop with untrained (seeded) denoisers.

>>> import torch
>>> from spinv.operators import Identity
>>> x = torch.full((1, 1, 8, 8), 0.5)
>>> r = pnp_pgd_with_metrics(Identity(), 2 * x, lambda u: 0.5 * u, truth=x, iterations=3)
>>> r["psnr"][0] == float("inf"), r["residuals"][-1]
(True, 0.0)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.experiments.denoising import _atomic_json, machine_info, train_denoiser
from spinv.experiments.nonexpansive_runs import _progress, _setup
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser

__all__ = ["pnp_pgd_with_metrics", "run_pnp", "pnp_convergence_experiment"]

_DATASETS = {"ct": "ct-head", "mri": "brain-t1"}


def _norm(t: torch.Tensor) -> float:
    return float(t.abs().pow(2).sum().sqrt())


def _real_denoiser(denoiser: Callable) -> Callable:
    """Apply a real denoiser to a complex image by stacking real and imaginary parts along the
    batch axis (a block-diagonal action: keeps Lipschitz constants and averagedness)."""
    def apply(u: torch.Tensor) -> torch.Tensor:
        if not u.is_complex():
            return denoiser(u)
        b = u.shape[0]
        out = denoiser(torch.cat([u.real, u.imag], dim=0))
        return torch.complex(out[:b], out[b:])

    return apply


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


@torch.no_grad()
def pnp_pgd_with_metrics(operator, y: torch.Tensor, denoiser: Callable,
                         truth: torch.Tensor, x0: torch.Tensor | None = None,
                         step: float | None = None, iterations: int = 100,
                         callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Algorithm 6 with per-iterate metrics against ``truth`` (real, in [0, 1]).

    ``x0`` defaults to :math:`A^*y`, ``step`` to :math:`1/\\|A\\|^2` (power iteration).
    Complex iterates (MRI) are denoised part-wise and measured by their magnitude. Returns
    lists (one entry per iteration ``k = 1..iterations``) ``residuals``
    :math:`\\|u_k-u_{k-1}\\|`, ``relative_residuals`` (divided by :math:`\\|u_0\\|`), ``psnr``,
    ``ssim`` and ``objective`` :math:`\\tfrac12\\|Au_k-y\\|^2` (``None`` where not finite),
    the final iterate ``x`` and the ``step`` used.
    """
    from spinv.metrics import psnr, ssim

    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected a positive integer")
    u = operator.adjoint(y) if x0 is None else x0.clone()
    if step is None:
        step = 1.0 / max(operator.norm(tuple(u.shape)) ** 2, 1e-12)
    if not step > 0:
        raise ValueError(f"step={step!r}: expected a positive number")
    den = _real_denoiser(denoiser)
    scale = _norm(u) or 1.0
    out: dict[str, Any] = {k: [] for k in ("residuals", "relative_residuals", "psnr", "ssim",
                                           "objective")}
    for _ in range(iterations):
        u_new = den(u - step * operator.adjoint(operator.forward(u) - y))
        d = _norm(u_new - u)
        u = u_new
        mag = (u.abs() if u.is_complex() else u).float()
        out["residuals"].append(_finite(d))
        out["relative_residuals"].append(_finite(d / scale))
        finite = bool(torch.isfinite(mag).all())
        out["psnr"].append(float(psnr(mag, truth, data_range=1.0)[0]) if finite else None)
        out["ssim"].append(float(ssim(mag.clamp(-10, 10), truth, data_range=1.0)[0])
                           if finite else None)
        out["objective"].append(_finite(0.5 * _norm(operator.forward(u) - y) ** 2))
        if callback is not None:
            callback(1)
    out["x"] = u
    out["step"] = float(step)
    return out


def _problem(cfg: dict):
    from spinv.problems import ct_problem, mri_problem

    n = cfg["image_size"]
    if cfg["problem"] == "ct":
        return ct_problem(n, n_angles=cfg["n_angles"], photons=cfg["photons"])
    return mri_problem(n, pattern=cfg["mask"], rate=cfg["rate"], noise=cfg["noise"],
                       seed=cfg["seed"])


def _certificates(model) -> dict:
    info: dict[str, Any] = {}
    if hasattr(model, "certified_lipschitz"):
        info["certified_lipschitz"] = model.certified_lipschitz()
        info["certified_averagedness"] = model.certified_averagedness()
    elif hasattr(model, "lipschitz_upper_bound"):
        info["certified_lipschitz"] = model.lipschitz_upper_bound()
        info["certified_averagedness"] = None
    return info


def run_pnp(cfg: dict, out: str | os.PathLike, progress: bool = True,
            denoiser: torch.nn.Module | None = None, denoiser_source: str | None = None) -> dict:
    """``spinv nonexpansive pnp`` (settings: section ``pnp`` of
    :mod:`~spinv.experiments.nonexpansive_config`).

    Simulates data of test slice ``test_index`` (CT: Poisson post-log on a 2x finer grid; MRI:
    noisy sampled k-space), trains the certified averaged denoiser (tied, ``alpha=0.5``,
    residual, ``gamma``) and, optionally, a DnCNN on the training split with Gaussian noise
    ``denoiser_sigma`` -- or uses ``denoiser`` (e.g. loaded from a ``spinv train`` run) instead
    of the averaged one -- and runs Algorithm 6 with each, with the relaxed denoiser
    :math:`\\Phi_\\lambda=(1-\\lambda)\\mathrm{id}+\\lambda\\Phi` (``denoiser_weight``
    :math:`\\lambda`; :math:`\\lambda\\alpha`-averaged if :math:`\\Phi` is
    :math:`\\alpha`-averaged, Definition 3.2.3). Writes ``results.json``,
    ``results.md``, ``convergence.png`` and ``reconstructions.png`` to ``out``.
    """
    from spinv.experiments.nonexpansive_report import (
        markdown_table,
        plot_images,
        plot_pnp_curves,
    )
    from spinv.metrics import psnr, ssim
    from spinv.training.checkpoint import atomic_write_text
    from spinv.training.data import load_images_for

    device = _setup(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = cfg["dataset"] or _DATASETS[cfg["problem"]]
    n = cfg["image_size"]
    test = load_images_for(dataset, "test", n)
    if cfg["test_index"] >= test.shape[0]:
        raise ValueError(f"config key 'pnp.test_index': got {cfg['test_index']}; the test "
                         f"split of {dataset!r} has {test.shape[0]} images")
    truth = test[cfg["test_index"]:cfg["test_index"] + 1].to(device)
    problem = _problem(cfg)
    problem.operator.to(device)
    y = problem.simulate(truth, seed=cfg["seed"])
    analytic = problem.analytic(y)
    x0 = {"analytic": analytic, "adjoint": problem.operator.adjoint(y),
          "zeros": torch.zeros_like(analytic)}[cfg["init"]]
    an_mag = (analytic.abs() if analytic.is_complex() else analytic).float()
    result: dict[str, Any] = {
        "command": "pnp", "settings": cfg, "machine": machine_info(), "dataset": dataset,
        "analytic": {"name": problem.analytic_name,
                     "psnr": float(psnr(an_mag, truth, data_range=1.0)[0]),
                     "ssim": float(ssim(an_mag, truth, data_range=1.0)[0])},
        "denoisers": {}, "runs": {},
    }
    train_steps = 0 if denoiser is not None else cfg["train_steps"]
    n_train = train_steps + (cfg["train_steps"] if cfg["include_dncnn"] else 0)
    denoisers: dict[str, torch.nn.Module] = {}
    with _progress(n_train + 2 * cfg["iterations"], f"pnp {cfg['problem']}", progress) as bar:
        images = load_images_for(dataset, "train", n).to(device)
        if denoiser is not None:
            name = "given denoiser"
            denoisers[name] = denoiser.to(device).eval()
            result["denoisers"][name] = {"source": denoiser_source, "trained_steps": None,
                                         **_certificates(denoiser)}
        else:
            name = f"averaged (tied, gamma={cfg['gamma']})"
            model = NonexpansiveDenoiser(1, width=cfg["width"], depth=cfg["depth"],
                                         method=cfg["method"], gamma=cfg["gamma"],
                                         residual=True, tied=True, alpha=0.5,
                                         power_size=(cfg["crop"], cfg["crop"]),
                                         seed=cfg["seed"]).to(device)
            info = train_denoiser(model, images, cfg["denoiser_sigma"], cfg["train_steps"],
                                  cfg["batch_size"], cfg["crop"], cfg["lr"], cfg["seed"],
                                  lr_schedule=cfg["lr_schedule"], callback=bar.update)
            denoisers[name] = model
            result["denoisers"][name] = {"source": "trained here", **info,
                                         **_certificates(model)}
        if cfg["include_dncnn"]:
            name = "DnCNN (unconstrained)"
            model = DnCNN(1, width=cfg["dncnn_width"] or cfg["width"], depth=cfg["dncnn_depth"],
                          batch_norm=cfg["dncnn_batch_norm"], seed=cfg["seed"]).to(device)
            info = train_denoiser(model, images, cfg["denoiser_sigma"], cfg["train_steps"],
                                  cfg["batch_size"], cfg["crop"], cfg["lr"], cfg["seed"],
                                  lr_schedule=cfg["lr_schedule"], callback=bar.update)
            denoisers[name] = model
            result["denoisers"][name] = {"source": "trained here", **info,
                                         **_certificates(model)}
        bar.total = n_train + len(denoisers) * cfg["iterations"]
        images_out = {"ground truth": truth[0, 0].cpu().numpy(),
                      problem.analytic_name: an_mag[0, 0].cpu().numpy()}
        captions = {problem.analytic_name: f"{result['analytic']['psnr']:.2f} dB / "
                                           f"{result['analytic']['ssim']:.3f}"}
        for name, d in denoisers.items():
            t0 = time.perf_counter()
            lam = cfg["denoiser_weight"]
            phi = d if lam == 1.0 else (lambda v, d=d, lam=lam: (1 - lam) * v + lam * d(v))
            r = pnp_pgd_with_metrics(problem.operator, y, phi, truth, x0=x0, step=cfg["step"],
                                     iterations=cfg["iterations"], callback=bar.update)
            x = r.pop("x")
            mag = (x.abs() if x.is_complex() else x).float()
            r["seconds"] = time.perf_counter() - t0
            r["final_psnr"], r["final_ssim"] = r["psnr"][-1], r["ssim"][-1]
            r["best_psnr"] = max((v for v in r["psnr"] if v is not None), default=None)
            r["final_relative_residual"] = r["relative_residuals"][-1]
            result["runs"][name] = r
            images_out[name] = np.nan_to_num(mag[0, 0].cpu().numpy())
            captions[name] = (f"{r['final_psnr']:.2f} dB / {r['final_ssim']:.3f}"
                              if r["final_psnr"] is not None else "diverged")
            _atomic_json(out / "results.json", result)
    _atomic_json(out / "results.json", result)
    what = "low-dose CT" if cfg["problem"] == "ct" else "MRI"
    plot_pnp_curves(result["runs"], out / "convergence.png",
                    title=f"PnP-PGD (Algorithm 6), {dataset} test slice {cfg['test_index']}")
    plot_images(images_out, out / "reconstructions.png", captions)
    rows = [[problem.analytic_name, result["analytic"]["psnr"], result["analytic"]["ssim"],
             None, None, None, None]]
    for name, r in result["runs"].items():
        dinfo = result["denoisers"][name]
        rel = r["final_relative_residual"]
        avg = dinfo.get("certified_averagedness")
        rows.append([name, r["final_psnr"], r["final_ssim"], r["best_psnr"],
                     None if rel is None else f"{rel:.2e}", dinfo.get("certified_lipschitz"),
                     None if avg is None else f"{avg:.4g}"])
    setup = (f"{cfg['n_angles']} views, {cfg['photons']} photons" if cfg["problem"] == "ct"
             else f"{cfg['mask']} mask, rate {cfg['rate']}, noise {cfg['noise']}")
    md = [f"# PnP reconstruction, {what} ({dataset})", "",
          f"Test slice {cfg['test_index']} of {dataset} at {n}x{n}; {setup}; "
          f"{cfg['iterations']} PnP-PGD iterations (Algorithm 6), denoiser weight "
          f"{cfg['denoiser_weight']}, step "
          f"{next(iter(result['runs'].values()))['step']:.3g}, init {cfg['init']}. Denoisers "
          f"trained {train_steps or cfg['train_steps']} steps at sigma {cfg['denoiser_sigma']} "
          f"on the {dataset} training split; seed {cfg['seed']}. Certified averagedness "
          "alpha means the denoiser is provably alpha-averaged (Theorem 3.2.4 then gives "
          "convergence of Algorithm 6).", "",
          markdown_table(["method", "final PSNR", "final SSIM", "best PSNR",
                          "final rel. residual", "certified Lip", "certified alpha"], rows),
          "", "![convergence](convergence.png)", "", "![reconstructions](reconstructions.png)",
          ""]
    atomic_write_text(out / "results.md", "\n".join(md))
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


