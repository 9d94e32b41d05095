"""The complete learning run behind ``spinv sampling learn`` and the experiments.

Steps (thesis Sec. 1.3): simulate noisy k-space for ``n_train`` training and the held-out
slices; learn the optimal :math:`\\alpha` for full sampling (the initialisation); learn the
pattern and :math:`\\alpha` with L-BFGS-B for the chosen parametrisation and :math:`\\beta`;
threshold (:math:`p_i>` ``threshold``) and re-tune :math:`\\alpha`; evaluate on the held-out
set with ``spinv.metrics``; build each baseline at the *same* sampling rate, tune its
:math:`\\alpha` on the training set with the same method, evaluate it identically. Files are
written atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from spinv.atomic import atomic_save_figure, atomic_save_npy, atomic_write_json
from spinv.bilevel.baselines import gozcu_greedy_lines, knoll_density, uninformed_patterns
from spinv.bilevel.config import SamplingConfig
from spinv.bilevel.data import make_lower_level, training_and_test
from spinv.bilevel.implicit import SolverOptions
from spinv.bilevel.learn import (
    evaluate_pattern,
    learn_continuation,
    threshold_and_retune,
    tune_alpha,
)
from spinv.bilevel.lower_level import make_regulariser
from spinv.bilevel.parametrisations import CartesianLines, FixedPattern, FreePattern, sampling_rate

__all__ = ["run_learning", "save_pattern_png"]


def save_pattern_png(path: Path, patterns: dict[str, np.ndarray]) -> None:
    """One panel per pattern (grey scale, DC at the centre), titled with name and rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(patterns)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), squeeze=False)
    for ax, (name, pat) in zip(axes[0], patterns.items(), strict=True):
        ax.imshow(np.asarray(pat), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{name}\n{100 * float((np.asarray(pat) > 0).mean()):.1f}%", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=100)


def _parametrisation(cfg: SamplingConfig, shape, alpha_scale, fixed_alpha):
    if cfg.parametrisation == "free":
        return FreePattern(shape, alpha_scale=alpha_scale, alpha=fixed_alpha)
    if cfg.parametrisation == "lines":
        return CartesianLines(shape, axis=cfg.line_axis, alpha_scale=alpha_scale,
                              alpha=fixed_alpha, weights=cfg.line_weights)
    mask = uninformed_patterns(shape, cfg.fixed_rate, cfg.seed, kinds=(cfg.fixed_pattern,))
    return FixedPattern(mask[cfg.fixed_pattern], alpha_scale=alpha_scale, alpha=fixed_alpha)


def run_learning(cfg: SamplingConfig, out: str | Path | None = None, log=print) -> dict:
    """Run the whole pipeline; returns the metrics dict (also ``out/metrics.json``)."""
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    train, test = training_and_test(cfg.data, cfg.size, cfg.n_train, cfg.n_test)
    reg = make_regulariser(cfg.regulariser, gamma=cfg.gamma)
    ll = make_lower_level(train, reg, noise=cfg.noise, eps=cfg.eps, seed=cfg.seed)
    lt = make_lower_level(test, reg, noise=cfg.noise, eps=cfg.eps, seed=cfg.seed + 1)
    opts = SolverOptions(method=cfg.solver, tol=cfg.tol, cg_tol=cfg.cg_tol)
    shape = (cfg.size, cfg.size)
    full = torch.ones(shape, dtype=torch.float64)
    log(f"data: {len(train)} training, {len(test)} held-out images of {cfg.size}x{cfg.size}; "
        f"regulariser {cfg.regulariser}, solver {cfg.solver}")

    # 1. initialisation: optimal alpha for full sampling (Sec. 1.3)
    init = tune_alpha(ll, full, alpha0=cfg.alpha0, maxiter=cfg.alpha_maxiter, opts=opts)
    alpha_full = init.alpha
    log(f"full sampling: alpha {alpha_full:.4g}, training loss {init.loss:.5g} "
        f"({init.evaluations} evaluations)")

    # 2. learn pattern and alpha with L-BFGS-B (Eq. 1.2)
    fixed_alpha = 0.0 if reg.is_none else None
    par = _parametrisation(cfg, shape, max(alpha_full, 1e-6), fixed_alpha)

    def progress(rec):
        stage = f"beta {rec['beta']:.3g}  " if cfg.beta_continuation else ""
        log(f"iter {rec['iteration']:4d}  {stage}objective {rec['objective']:.6g}  "
            f"rate {rec['sampling_rate']:.4f}  alpha {rec['alpha']:.4g}  "
            f"time {rec['seconds']:.1f}s")

    lam0 = par.initial(alpha_full if not reg.is_none else 0.0)
    res = learn_continuation(ll, par, cfg.beta, cfg.beta_continuation or [1.0], lam0=lam0,
                             maxiter=cfg.maxiter, opts=opts, callback=progress)
    log(f"L-BFGS-B: {res.iterations} iterations, {res.evaluations} evaluations "
        f"({res.effective_solves} effective lower-level solves), {res.message}")

    # 3. threshold and re-tune alpha (Sec. 1.3.3)
    final = threshold_and_retune(ll, res.pattern, res.alpha, cfg.threshold,
                                 maxiter=cfg.alpha_maxiter, opts=opts,
                                 alpha_scale=None if reg.is_none else par.alpha_scale)
    pattern, alpha = final.pattern, final.alpha
    rate = sampling_rate(pattern)
    log(f"thresholded pattern: rate {rate:.4f}, re-tuned alpha {alpha:.4g}")

    # 4. held-out evaluation, learned and baselines at the same rate
    results = {"learned": evaluate_pattern(lt, pattern, alpha, opts)}
    results["learned"]["alpha"] = alpha
    results["learned_train"] = evaluate_pattern(ll, pattern, alpha, opts)
    results["learned_continuous"] = evaluate_pattern(lt, res.pattern, res.alpha, opts)
    results["learned_continuous"]["alpha"] = res.alpha
    results["full_sampling"] = evaluate_pattern(lt, full, alpha_full, opts)
    results["full_sampling"]["alpha"] = alpha_full
    patterns = {"learned": pattern.numpy()}
    _baselines(cfg, ll, lt, rate, alpha, opts, results, patterns, log)
    log(f"{'learned':24s} rate {rate:.4f}  PSNR {results['learned']['psnr']:.2f}  "
        f"SSIM {results['learned']['ssim']:.4f}")

    metrics = {
        "sampling_rate": rate,
        "alpha": alpha,
        "beta": cfg.beta,
        "psnr": results["learned"]["psnr"],
        "ssim": results["learned"]["ssim"],
        "results": results,
        "training": _training_record(cfg, alpha_full, res, init, final),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "seconds": time.perf_counter() - t_start,
        "torch_threads": torch.get_num_threads(),
        "config": cfg.to_dict(),
    }
    if out is not None:
        _write_outputs(Path(out), metrics, pattern, res.pattern, patterns, log)
    return metrics


def _baselines(cfg: SamplingConfig, ll, lt, rate: float, alpha: float, opts, results: dict,
               patterns: dict, log) -> None:
    """Step 4 of :func:`run_learning`: the baseline patterns of ``cfg.baselines`` at the
    learned ``rate``, each with its own tuned alpha, evaluated on the held-out set (into
    ``results`` and ``patterns``)."""
    shape = (cfg.size, cfg.size)
    floor = 1.0 / (cfg.size * cfg.size)
    base_masks = {}
    plain = [b for b in cfg.baselines if b not in ("knoll", "gozcu")]
    if plain:
        base_masks.update(uninformed_patterns(shape, max(rate, floor), cfg.seed, kinds=plain))
    if "knoll" in cfg.baselines:
        base_masks["knoll"] = knoll_density(ll.y, max(rate, floor), cfg.seed)
    extra = {}
    if "gozcu" in cfg.baselines:
        t0 = time.perf_counter()
        g = gozcu_greedy_lines(ll, alpha, rate, axis=cfg.line_axis, opts=opts)
        base_masks["gozcu"] = g.pattern
        extra["gozcu"] = {"lower_level_solves": g.lower_level_solves,
                          "seconds": time.perf_counter() - t0, "lines": g.lines}
    for name, mask in base_masks.items():
        tuned = tune_alpha(ll, mask, alpha0=alpha, maxiter=cfg.alpha_maxiter, opts=opts)
        m = evaluate_pattern(lt, mask, tuned.alpha, opts)
        m["alpha"] = tuned.alpha
        m.update(extra.get(name, {}))
        results[name] = m
        patterns[name] = mask.numpy()
        log(f"{name:24s} rate {m['sampling_rate']:.4f}  PSNR {m['psnr']:.2f}  "
            f"SSIM {m['ssim']:.4f}")


def _training_record(cfg: SamplingConfig, alpha_full: float, res, init, final) -> dict:
    """The ``training`` section of the metrics: L-BFGS-B counts, timings and history."""
    return {
        "alpha_full_sampling": alpha_full,
        "lbfgsb_iterations": res.iterations,
        "evaluations": res.evaluations,
        "effective_lower_level_solves": res.effective_solves
        + 2 * (init.evaluations + final.evaluations),
        "inner_iterations": res.inner_iterations,
        "cg_iterations": res.cg_iterations,
        "learn_seconds": res.seconds,
        "continuous_rate": res.sampling_rate,
        "objective": res.objective,
        "loss": res.loss,
        "threshold_train_loss": final.loss,
        "beta_continuation": cfg.beta_continuation,
        "message": res.message,
        "projected_gradient": res.projected_gradient,
        "history": res.history,
    }


def _write_outputs(out: Path, metrics: dict, pattern, continuous, patterns: dict, log) -> None:
    """``pattern.npy``, ``pattern_continuous.npy``, the two figures, one ``baseline_*.npy`` per
    baseline and ``metrics.json`` (all written atomically)."""
    atomic_save_npy(out / "pattern.npy", pattern.numpy())
    atomic_save_npy(out / "pattern_continuous.npy", continuous.numpy())
    save_pattern_png(out / "pattern.png", {"learned": pattern.numpy()})
    save_pattern_png(out / "patterns.png", patterns)
    for name, pat in patterns.items():
        if name != "learned":
            atomic_save_npy(out / f"baseline_{name}.npy", pat)
    atomic_write_json(out / "metrics.json", metrics)
    log(f"wrote {out}/pattern.npy, pattern.png, patterns.png, metrics.json")
