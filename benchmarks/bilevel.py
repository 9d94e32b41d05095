"""Benchmark of the bilevel sampling-pattern learning (thesis ch. 1).

1. One upper-level objective + gradient (Algorithm 3, 1 image, TV, float64, 1 thread) at 64^2
   and 128^2, cold start, for several solver settings; each gradient's relative error is
   measured against a reference computed with Newton-CG at gtol 1e-12 and CG at 1e-12.
   "authors-like" is our PDHG (Algorithm 1, App. 1.C.2 steps) with the settings of the authors'
   example notebook (lower-level tol 1e-10, at most 1000 iterations; unpreconditioned CG at
   1e-6); the thesis reports 5.65 s (64^2) and 21.1 s (128^2) for the authors' code.
2. A complete free-pattern learning on 7 training slices (L-BFGS-B, warm starts), with wall
   time and the effective number of lower-level solves (2 per evaluation, Table 1.4).

Usage: python benchmarks/bilevel.py [--sizes 64 128] [--learn-size 64] [--learn-maxiter 150]
Writes benchmarks/results/bilevel.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _machine import machine_info as _machine_info

from spinv.atomic import atomic_write_json
from spinv.bilevel.data import make_lower_level, training_and_test
from spinv.bilevel.implicit import SolverOptions, loss_and_gradient
from spinv.bilevel.learn import learn, tune_alpha
from spinv.bilevel.lower_level import make_regulariser
from spinv.bilevel.parametrisations import FreePattern

AUTHORS_SECONDS = {64: 5.65, 128: 21.1}

SETTINGS = {
    "newton-pcg (tol 1e-6, cg 1e-6)": SolverOptions("newton", tol=1e-6, cg_tol=1e-6),
    "newton-pcg (tol 1e-8, cg 1e-8)": SolverOptions("newton", tol=1e-8, cg_tol=1e-8),
    "authors-like pdhg (tol 1e-10, <=1000 it, cg 1e-6)": SolverOptions(
        "pdhg", tol=1e-10, maxit=1000, cg_tol=1e-6, precondition=False
    ),
}


def calibration_ms() -> float:
    """Milliseconds for a fixed micro-workload (64^2 complex128: FFT pair + 4 products), to
    document machine load (compare it between runs; lower is a less loaded machine)."""
    x = torch.randn(1, 1, 64, 64, dtype=torch.complex128)
    for _ in range(20):
        torch.fft.ifft2(torch.fft.fft2(x) * x * x) * x * x
    t0 = time.perf_counter()
    for _ in range(200):
        torch.fft.ifft2(torch.fft.fft2(x) * x * x) * x * x
    return (time.perf_counter() - t0) / 200 * 1e3


def machine_info() -> dict:
    return _machine_info(dtype="float64 / complex128")


def _problem(size: int, n: int):
    train, _ = training_and_test("brain-t1", size, n, n_test=1)
    reg = make_regulariser("tv", gamma=0.01)
    return make_lower_level(train, reg, noise=0.02, eps=1e-2, seed=0)


def _patterns(size: int) -> dict:
    from spinv.operators.sampling import variable_density

    g = torch.Generator().manual_seed(0)
    return {
        "random weights in [0,1]": torch.rand(size, size, generator=g, dtype=torch.float64),
        "binary variable density 25%": variable_density((size, size), 0.25, seed=0).double(),
    }


def bench_gradient(size: int, repeats: int = 3) -> list:
    return [bench_gradient_pattern(size, name, s, repeats) for name, s in _patterns(size).items()]


def bench_gradient_pattern(size: int, pattern: str, s: torch.Tensor, repeats: int) -> dict:
    ll = _problem(size, 1)
    alpha = 2e-3
    ref = loss_and_gradient(ll, s, alpha, SolverOptions("newton", tol=1e-12, cg_tol=1e-12))
    gref = torch.cat([ref.grad_s.reshape(-1), torch.tensor([ref.grad_alpha * alpha])])
    rows = {}
    for name, opts in SETTINGS.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            lg = loss_and_gradient(ll, s, alpha, opts)
            times.append(time.perf_counter() - t0)
        gg = torch.cat([lg.grad_s.reshape(-1), torch.tensor([lg.grad_alpha * alpha])])
        rows[name] = {
            "seconds_min": min(times),
            "seconds_median": sorted(times)[len(times) // 2],
            "relative_gradient_error": float((gg - gref).norm() / gref.norm()),
            "lower_level_iterations": lg.inner_iterations,
            "adjoint_cg_iterations": lg.cg_iterations,
        }
    return {"size": size, "pattern": pattern, "alpha": alpha,
            "authors_seconds": AUTHORS_SECONDS.get(size), "settings": rows}


def bench_learning(size: int, maxiter: int, beta: float) -> dict:
    ll = _problem(size, 7)
    opts = SolverOptions("newton", tol=1e-6, cg_tol=1e-6)
    t0 = time.perf_counter()
    init = tune_alpha(ll, torch.ones(size, size, dtype=torch.float64), alpha0=1e-3,
                      maxiter=15, opts=opts)
    par = FreePattern((size, size), alpha_scale=init.alpha)
    res = learn(ll, par, beta, lam0=par.initial(init.alpha), maxiter=maxiter, opts=opts)
    wall = time.perf_counter() - t0
    return {
        "size": size,
        "n_train": 7,
        "beta": beta,
        "maxiter": maxiter,
        "lbfgsb_iterations": res.iterations,
        "evaluations": res.evaluations + init.evaluations,
        "effective_lower_level_solves": res.effective_solves + init.effective_solves,
        "wall_seconds": wall,
        "seconds_per_evaluation": wall / max(1, res.evaluations + init.evaluations),
        "sampling_rate": res.sampling_rate,
        "alpha": res.alpha,
        "message": res.message,
        "projected_gradient": res.projected_gradient,
        "objective_history": [h["objective"] for h in res.history],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--learn-size", type=int, default=64)
    ap.add_argument("--learn-maxiter", type=int, default=150)
    ap.add_argument("--beta", type=float, default=1e-2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bilevel.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"machine": machine_info(), "gradient": [], "learning": None}
    result["machine"]["calibration_ms_start"] = calibration_ms()
    print(f"calibration {result['machine']['calibration_ms_start']:.3f} ms "
          f"(load average {result['machine'].get('load_average')})")
    print(f"{'size':>5} {'pattern':28s} {'setting':52s} {'time [s]':>9} {'rel. grad err':>14} "
          f"{'speed-up':>9}")
    for size in args.sizes:
        for r in bench_gradient(size, args.repeats):
            result["gradient"].append(r)
            for name, row in r["settings"].items():
                sp = (AUTHORS_SECONDS.get(size) or float("nan")) / row["seconds_median"]
                row["speedup_vs_authors"] = sp
                print(f"{size:5d} {r['pattern']:28s} {name:52s} {row['seconds_median']:9.3f} "
                      f"{row['relative_gradient_error']:14.2e} {sp:8.1f}x", flush=True)
    if args.learn_maxiter > 0:
        lr = bench_learning(args.learn_size, args.learn_maxiter, args.beta)
        result["learning"] = lr
        print(f"learning {lr['size']}^2, 7 slices: {lr['wall_seconds']:.1f} s, "
              f"{lr['lbfgsb_iterations']} L-BFGS-B iterations, {lr['evaluations']} evaluations, "
              f"{lr['effective_lower_level_solves']} effective lower-level solves, "
              f"rate {lr['sampling_rate']:.3f}")
    result["machine"]["load_average_end"] = os.getloadavg()
    result["machine"]["calibration_ms_end"] = calibration_ms()
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
