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
- :func:`run_pnp`: ``spinv nonexpansive pnp`` -- held-out ``ct-head`` slices (low-dose
  :func:`~spinv.problems.ct_problem`) or ``brain-t1`` slices
  (:func:`~spinv.problems.mri_problem`, variable-density lines): FBP / zero filling, TV,
  PnP-PGD and PnP-ADMM with the certified averaged denoiser and with a DnCNN (trained briefly
  on the matching training split), every free parameter chosen on the validation split
  (:mod:`~spinv.experiments.pnp_protocol`), the test slices reconstructed once.
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

from spinv.experiments.denoising import DenoiserTraining, machine_info, train_denoiser
from spinv.experiments.denoising import write_json as _atomic_json
from spinv.experiments.nonexpansive_runs import progress_bar as _progress
from spinv.experiments.nonexpansive_runs import setup_device as _setup
from spinv.experiments.pnp_protocol import image_metrics
from spinv.learned.pnp import RelaxedDenoiser, pnp_proximal_gradient
from spinv.linalg import total_norm
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser

__all__ = ["pnp_pgd_with_metrics", "run_pnp", "pnp_convergence_experiment"]

_DATASETS = {"ct": "ct-head", "mri": "brain-t1"}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


@torch.no_grad()
def pnp_pgd_with_metrics(operator, y: torch.Tensor, denoiser: Callable,
                         truth: torch.Tensor, x0: torch.Tensor | None = None,
                         step: float | None = None, iterations: int = 100,
                         callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Algorithm 6 (:func:`~spinv.learned.pnp.pnp_proximal_gradient`, all ``iterations`` run)
    with per-iterate metrics against ``truth`` (real, in [0, 1]).

    ``x0`` defaults to :math:`A^*y`, ``step`` to :math:`1/\\|A\\|^2`
    (:meth:`~spinv.operators.base.LinearOperator.norm` on ``x0``'s shape). Complex iterates
    (MRI) are denoised part-wise and measured by their magnitude. Returns lists (one entry per
    iteration ``k = 1..iterations``) ``residuals`` :math:`\\|u_k-u_{k-1}\\|`,
    ``relative_residuals`` (divided by :math:`\\|u_0\\|`), ``psnr``, ``ssim`` and ``objective``
    :math:`\\tfrac12\\|Au_k-y\\|^2` (``None`` where not finite), the final iterate ``x`` and
    the ``step`` used; ``callback(1)`` is called after every iteration.
    """
    from spinv.metrics import psnr, ssim

    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected a positive integer")
    u0 = operator.adjoint(y) if x0 is None else x0
    if step is None:
        step = 1.0 / max(operator.norm(tuple(u0.shape)) ** 2, 1e-12)
    out: dict[str, Any] = {k: [] for k in ("residuals", "relative_residuals", "psnr", "ssim",
                                           "objective")}

    def record(_k: int, u: torch.Tensor) -> None:
        mag = (u.abs() if u.is_complex() else u).float()
        finite = bool(torch.isfinite(mag).all())
        out["psnr"].append(float(psnr(mag, truth, data_range=1.0)[0]) if finite else None)
        out["ssim"].append(float(ssim(mag.clamp(-10, 10), truth, data_range=1.0)[0])
                           if finite else None)
        out["objective"].append(_finite(0.5 * total_norm(operator.forward(u) - y) ** 2))
        if callback is not None:
            callback(1)

    res = pnp_proximal_gradient(operator, y, denoiser, x0=u0, step=step, iterations=iterations,
                                tol=None, complex_mode="split", callback=record)
    out["residuals"] = [_finite(d) for d in res.residuals]
    out["relative_residuals"] = [_finite(d) for d in res.relative_residuals]
    out["x"] = res.x
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


def _train_denoisers(cfg: dict, images: torch.Tensor, device, bar, denoiser, denoiser_source,
                     result: dict, runs_dir: Path) -> dict[str, dict[Any, torch.nn.Module]]:
    """One certified averaged denoiser (tied, ``alpha=0.5``, residual, ``gamma``) and one
    DnCNN per training noise level of ``denoiser_sigmas`` (or the given ``denoiser``)."""
    kinds: dict[str, dict[Any, torch.nn.Module]] = {"averaged": {}}
    if cfg["include_dncnn"]:
        kinds["DnCNN"] = {}
    for sigma in cfg["denoiser_sigmas"]:
        for kind in kinds:
            if kind == "averaged" and denoiser is not None:
                continue
            if kind == "averaged":
                model = NonexpansiveDenoiser(1, width=cfg["width"], depth=cfg["depth"],
                                             method=cfg["method"], gamma=cfg["gamma"],
                                             residual=True, tied=True, alpha=0.5,
                                             power_size=(cfg["crop"], cfg["crop"]),
                                             seed=cfg["seed"]).to(device)
            else:
                model = DnCNN(1, width=cfg["dncnn_width"] or cfg["width"],
                              depth=cfg["dncnn_depth"], batch_norm=cfg["dncnn_batch_norm"],
                              seed=cfg["seed"]).to(device)
            settings = DenoiserTraining(sigma, cfg["train_steps"], cfg["batch_size"],
                                        cfg["crop"], cfg["lr"], cfg["seed"], cfg["lr_schedule"],
                                        cfg["dataset"] or _DATASETS[cfg["problem"]])
            info = train_denoiser(model, images, settings, callback=bar.update,
                                  run_dir=runs_dir / f"{kind}-sigma={sigma}")
            kinds[kind][sigma] = model
            result["denoisers"][f"{kind} sigma={sigma}"] = {
                "source": "trained here", "sigma": sigma, "identity_loss": sigma ** 2,
                **info, **_certificates(model)}
    if denoiser is not None:
        kinds["averaged"] = {None: denoiser.to(device).eval()}
        result["denoisers"]["averaged (given)"] = {"source": denoiser_source, "sigma": None,
                                                   **_certificates(denoiser)}
    return kinds


def _grids(cfg: dict, method: str, sigmas: list) -> list[dict]:
    if method == "pgd":
        return [{"sigma": s, "weight": w, "step_factor": c} for s in sigmas
                for w in cfg["weights"] for c in cfg["step_factors"]]
    return [{"sigma": s, "weight": w, "rho_factor": r} for s in sigmas
            for w in cfg["admm_weights"] for r in cfg["admm_rhos"]]


def _admissible(kind: str, method: str, model, weight: float) -> bool:
    """ADMM with the averaged denoiser: only certified firmly nonexpansive relaxations."""
    if kind != "averaged" or method != "admm":
        return True
    alpha = RelaxedDenoiser(model, weight).certified_averagedness()
    return alpha is not None and alpha <= 0.5 + 1e-12


def run_pnp(cfg: dict, out: str | os.PathLike, progress: bool = True,
            denoiser: torch.nn.Module | None = None, denoiser_source: str | None = None) -> dict:
    """``spinv nonexpansive pnp`` (settings: section ``pnp`` of
    :mod:`~spinv.experiments.nonexpansive_config`): the validation protocol of
    :mod:`~spinv.experiments.pnp_protocol`.

    1. Train, on the training split with Gaussian noise of each level in ``denoiser_sigmas``,
       the certified averaged denoiser (tied, ``alpha=0.5``, residual, ``gamma``) and a DnCNN
       (or use the given ``denoiser`` instead of the averaged one).
    2. On ``n_val`` validation slices (CT: Poisson post-log data on a 2x finer grid; MRI: noisy
       sampled k-space), choose by mean PSNR: TV's alpha; for PnP-PGD (Algorithm 6) and
       PnP-ADMM with each denoiser kind, the training sigma, the relaxation weight lambda of
       :math:`(1-\\lambda)\\mathrm{id}+\\lambda\\Phi` and the step / penalty.
    3. Reconstruct the ``n_test`` test slices once with the chosen parameters; report mean
       PSNR / SSIM, the certificate of the relaxed denoiser actually used, and the
       fixed-point residual per iteration.

    Writes ``results.json`` (also after each stage), ``results.md``, ``convergence.png`` and
    ``reconstructions.png`` to ``out``.
    """
    from spinv.experiments.pnp_protocol import (
        evenly_spaced,
        grid_search,
        make_case,
        run_pnp_method,
        run_tv,
    )
    from spinv.training.data import load_images_for
    from spinv.variational.reconstruct import log_search

    t_start = time.perf_counter()
    device = _setup(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = cfg["dataset"] or _DATASETS[cfg["problem"]]
    n = cfg["image_size"]
    val_all = load_images_for(dataset, "val", n)
    test_all = load_images_for(dataset, "test", n)
    val_idx = evenly_spaced(val_all.shape[0], cfg["n_val"])
    test_idx = evenly_spaced(test_all.shape[0], cfg["n_test"])
    if cfg["show_index"] >= len(test_idx):
        raise ValueError(f"config key 'pnp.show_index': got {cfg['show_index']}; only "
                         f"{len(test_idx)} test slices are used")
    problem = _problem(cfg)
    problem.operator.to(device)
    val = make_case(problem, val_all[val_idx].to(device), cfg["seed"] + 1, cfg["init"])
    test = make_case(problem, test_all[test_idx].to(device), cfg["seed"], cfg["init"])
    result: dict[str, Any] = {
        "command": "pnp", "settings": cfg, "machine": machine_info(), "dataset": dataset,
        "val_indices": val_idx, "test_indices": test_idx, "op_norm_squared": test.op_norm2,
        "denoisers": {}, "validation": {}, "test": {},
    }
    result["test"][problem.analytic_name] = image_metrics(test.analytic, test.truth)
    iters = {"pgd": cfg["iterations"], "admm": cfg["admm_iterations"]}
    methods = ["pgd"] + (["admm"] if cfg["include_admm"] else [])
    n_sig = len(cfg["denoiser_sigmas"]) if denoiser is None else 1
    n_kinds = 1 + int(cfg["include_dncnn"])
    n_train = cfg["train_steps"] * len(cfg["denoiser_sigmas"]) * (
        n_kinds - int(denoiser is not None))
    n_runs = sum(len(_grids(cfg, m, [None] * n_sig)) + 1 for m in methods) * n_kinds
    with _progress(n_train + n_runs, f"pnp {cfg['problem']}", progress) as bar:
        images = load_images_for(dataset, "train", n).to(device)
        kinds = _train_denoisers(cfg, images, device, bar, denoiser, denoiser_source, result,
                                 out / "runs")
        _atomic_json(out / "results.json", result)
        recon: dict[str, torch.Tensor] = {}
        if cfg["include_tv"]:
            alpha, hist = log_search(
                lambda a: run_tv(val, a, cfg["tv_iterations"], with_ssim=False)["psnr_mean"],
                cfg["tv_grid"], cfg["tv_refine"])
            result["validation"]["TV"] = {"best": {"alpha": alpha},
                                          "table": [{"alpha": a, "score": s} for a, s in hist]}
            r = run_tv(test, alpha, cfg["tv_iterations"], keep_x=True)
            recon["TV"] = r.pop("x")
            result["test"]["TV"] = {**r, "params": {"alpha": alpha}}
            _atomic_json(out / "results.json", result)
        for method in methods:
            for kind, models in kinds.items():
                label = f"PnP-{method.upper()} {kind}"

                def score(p: dict, method=method, kind=kind, models=models) -> float:
                    bar.update(1)
                    model = models[p["sigma"]]
                    if not _admissible(kind, method, model, p["weight"]):
                        return -math.inf
                    kw = {k: v for k, v in p.items() if k != "sigma"}
                    return run_pnp_method(val, method, model, iterations=iters[method],
                                          cg_iterations=cfg["cg_iterations"], with_ssim=False,
                                          **kw)["psnr_mean"]

                best, table = grid_search(score, _grids(cfg, method, list(models)))
                result["validation"][label] = {"best": best, "table": table}
                model = models[best["sigma"]]
                kw = {k: v for k, v in best.items() if k != "sigma"}
                r = run_pnp_method(test, method, model, iterations=iters[method],
                                   cg_iterations=cfg["cg_iterations"], track=True, **kw)
                bar.update(1)
                recon[label] = r.pop("x")
                relaxed = RelaxedDenoiser(model, best["weight"])
                result["test"][label] = {**r, "params": best,
                                         "certified_averagedness":
                                             relaxed.certified_averagedness(),
                                         "certified_lipschitz": relaxed.certified_lipschitz()}
                _atomic_json(out / "results.json", result)
    result["seconds"] = time.perf_counter() - t_start
    result["machine_after"] = machine_info()
    _atomic_json(out / "results.json", result)
    _report(result, cfg, out, problem.analytic_name, test, recon)
    return result


def _report(result: dict, cfg: dict, out: Path, analytic_name: str, test, recon: dict) -> None:
    """``results.md``, ``convergence.png`` (residual and PSNR per iteration) and
    ``reconstructions.png`` (slice ``show_index``)."""
    from spinv.atomic import atomic_write_text
    from spinv.experiments.nonexpansive_report import (
        markdown_table,
        plot_images,
        plot_pnp_curves,
    )

    k = cfg["show_index"]
    runs = {name: {"relative_residuals": r["relative_residuals"],
                   "psnr": r["psnr_per_iteration"]}
            for name, r in result["test"].items() if "relative_residuals" in r}
    dataset = result["dataset"]
    plot_pnp_curves(runs, out / "convergence.png",
                    title=f"{dataset}, mean over {len(result['test_indices'])} test slices")
    images = {"ground truth": test.truth[k, 0].cpu().numpy(),
              analytic_name: image_magnitude(test.analytic[k:k + 1])}
    captions = {}
    for name, x in recon.items():
        images[name] = np.nan_to_num(image_magnitude(x[k:k + 1]))
    for name, r in result["test"].items():
        if r.get("psnr") is not None:
            captions[name] = f"{r['psnr'][k]:.2f} dB / {r['ssim'][k]:.3f}"
    plot_images(images, out / "reconstructions.png", captions)

    def fmt(v, spec):
        return None if v is None else format(v, spec)

    rows = []
    for name, r in result["test"].items():
        params = ", ".join(f"{a}={b:.3g}" for a, b in r.get("params", {}).items()
                           if b is not None)
        rows.append([name, r["psnr_mean"], r.get("ssim_mean"), params or None,
                     fmt(r.get("final_relative_residual"), ".2e"),
                     fmt(r.get("certified_lipschitz"), ".4g"),
                     fmt(r.get("certified_averagedness"), ".4g")])
    setup = (f"{cfg['n_angles']} views, {cfg['photons']} photons" if cfg["problem"] == "ct"
             else f"{cfg['mask']} mask, rate {cfg['rate']}, noise {cfg['noise']}")
    what = "low-dose CT" if cfg["problem"] == "ct" else "MRI"
    md = [f"# PnP reconstruction, {what} ({dataset})", "",
          f"{dataset} at {_size(cfg)}; {setup}. Parameters chosen on validation slices "
          f"{result['val_indices']} by mean PSNR (grids in results.json, `validation`), then "
          f"test slices {result['test_indices']} reconstructed once: mean over them below. "
          f"PnP-PGD (Algorithm 6): {cfg['iterations']} iterations, step c/||A||^2; PnP-ADMM: "
          f"{cfg['admm_iterations']} iterations, rho = r ||A||^2. Relaxed denoiser "
          "(1 - weight) id + weight Phi; its certificate (Lipschitz bound, averagedness "
          "alpha = weight x alpha(Phi)) is that of the denoiser actually used. Denoisers "
          f"trained {cfg['train_steps']} steps at sigma in {cfg['denoiser_sigmas']} on the "
          f"{dataset} training split; seed {cfg['seed']}; {result['seconds']:.0f} s in total.",
          "", markdown_table(["method", "mean PSNR", "mean SSIM", "chosen on validation",
                              "final rel. residual", "certified Lip", "certified alpha"], rows),
          "", "Denoisers (final training loss vs sigma^2, the loss of the identity):", "",
          markdown_table(["denoiser", "final loss", "sigma^2", "train s", "certified Lip",
                          "certified alpha"],
                         [[name, fmt(d.get("final_loss"), ".3g"),
                           fmt(d.get("identity_loss"), ".3g"), d.get("train_seconds"),
                           fmt(d.get("certified_lipschitz"), ".4g"),
                           fmt(d.get("certified_averagedness"), ".4g")]
                          for name, d in result["denoisers"].items()]),
          "", "![convergence](convergence.png)", "", "![reconstructions](reconstructions.png)",
          ""]
    atomic_write_text(out / "results.md", "\n".join(md))


def image_magnitude(x: torch.Tensor) -> np.ndarray:
    """The first image of ``x`` as a real numpy array (complex: its magnitude)."""
    return (x.abs() if x.is_complex() else x)[0, 0].float().cpu().numpy()


def _size(cfg: dict) -> str:
    return f"{cfg['image_size']}x{cfg['image_size']}"


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
            "DnCNN (unconstrained)": DnCNN(1, width=8, depth=8, zero_last=False,
                                           seed=seed).eval(),
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


