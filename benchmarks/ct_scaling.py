"""CT at clinical sizes and how time and memory grow (issue 16.5).

Usage::

    python benchmarks/ct_scaling.py [--sizes 64 128 256 512] [--views 50 200 1000]
        [--budget-gib 3] [--repeats 3] [--out benchmarks/results/ct_scaling.json]
        [--plot docs/ct-scaling.png]

For every (image size N, views) of the grid (``ceil(sqrt 2 N)`` unit detectors) and the two
clinical geometries -- 512^2 with 50 views, and LoDoPaB-like 512^2 with 1000 views and 513
detectors -- it measures, each in a fresh child process so that its peak memory is its own:

* ``matrix``: ParallelBeamCT with the cached sparse matrix (built without the disk cache;
  build seconds recorded), only where the matrix's estimate is within ``--budget-gib``
  (``SPINV_MAX_OPERATOR_GIB`` of the children);
* ``matrix-free``: ParallelBeamCT(matrix_free=True) (src/spinv/operators/ct_matrix_free.py);
* ``auto``: which path ``ParallelBeamCT`` picks by itself under that budget;
* ``skimage``: ``radon(circle=False)`` + ``iradon(filter_name=None)``, the same geometry.

Times are forward + adjoint of one image, median over ``--repeats`` after a warm-up (CPU time
of the child, one thread, and wall time); memory is the child's peak resident set size minus
its resident size after imports (``ru_maxrss``). The JSON records the machine and the load;
the plot shows time and memory against the number of ray-pixel samples
:math:`n_a n_d N`, log-log.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

LODOPAB = (512, 1000, 513)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


def measure(n: int, views: int, n_det: int, method: str, repeats: int) -> dict:
    """One configuration in this process (called in a child)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from skimage.transform import iradon, radon

    from spinv.operators import ParallelBeamCT

    base = _rss_bytes()
    x = torch.rand(1, 1, n, n, generator=torch.Generator().manual_seed(0))
    out: dict = {"image_size": n, "n_angles": views, "n_detectors": n_det, "method": method}
    if method == "skimage":
        theta = np.linspace(0.0, 180.0, views, endpoint=False)
        img = x[0, 0].double().numpy()
        if n_det != math.ceil(math.sqrt(2) * n):
            out["note"] = "skimage uses its own ceil(sqrt 2 N) bins"
        sino = radon(img, theta, circle=False)

        def fwd_adj():
            radon(img, theta, circle=False)
            iradon(sino, theta, output_size=n, filter_name=None, circle=False)
    else:
        t0 = time.perf_counter()
        free = {"matrix": False, "matrix-free": True, "auto": None}[method]
        op = ParallelBeamCT(n, views, n_detectors=n_det, cache=False, matrix_free=free)
        out["construct_s"] = time.perf_counter() - t0
        out["path"] = "matrix-free" if op._free is not None else "matrix"
        if op._free is None:
            out["nnz"] = int(op.matrix.nnz)

        def fwd_adj():
            with torch.no_grad():
                op.adjoint(op(x))
    out["fwd_adj_cpu_s"], out["fwd_adj_wall_s"] = _time(fwd_adj, repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["peak_memory_bytes"] = max(0, peak - base)
    out["resident_after_bytes"] = max(0, _rss_bytes() - base)
    out["samples"] = views * n_det * n
    return out


def run_child(n: int, views: int, n_det: int, method: str, repeats: int, budget: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPINV_MAX_OPERATOR_GIB": str(budget)}
    cmd = [sys.executable, __file__, "--child", str(n), str(views), str(n_det), method,
           "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("CT-JSON "):
            return json.loads(line[8:])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"image_size": n, "n_angles": views, "n_detectors": n_det, "method": method,
            "failed": tail}


def configurations(sizes, views, clinical: bool = True) -> list[tuple[int, int, int]]:
    grid = [(n, v, math.ceil(math.sqrt(2) * n)) for n in sizes for v in views]
    for extra in ((512, 50, math.ceil(math.sqrt(2) * 512)), LODOPAB) if clinical else ():
        if extra not in grid:
            grid.append(extra)
    return grid


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    styles = {"matrix": "o-", "matrix-free": "s-", "skimage": "^--"}
    for method, style in styles.items():
        pts = sorted((r["samples"], r["fwd_adj_cpu_s"], r["peak_memory_bytes"] / 2**20)
                     for r in rows if r["method"] == method and "failed" not in r)
        if not pts:
            continue
        xs, ts, ms = zip(*pts, strict=True)
        axes[0].loglog(xs, ts, style, label=method, alpha=0.8)
        axes[1].loglog(xs, ms, style, label=method, alpha=0.8)
    allx = [r["samples"] for r in rows if "samples" in r]
    if allx:
        lo, hi = min(allx), max(allx)
        axes[0].loglog([lo, hi], [3e-8 * lo, 3e-8 * hi], ":", color="grey", label="slope 1")
    axes[0].set(xlabel="views x detectors x N", ylabel="forward + adjoint, CPU s (1 thread)",
                title="time per image")
    axes[1].set(xlabel="views x detectors x N", ylabel="peak extra memory, MiB",
                title="memory")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--views", type=int, nargs="+", default=[50, 200, 1000])
    p.add_argument("--budget-gib", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=["matrix", "matrix-free", "auto", "skimage"])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ct_scaling.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs/ct-scaling.png")
    p.add_argument("--no-clinical", action="store_true",
                   help="leave out the 512^2 50-view and LoDoPaB-like geometries")
    p.add_argument("--child", nargs=4, metavar=("N", "VIEWS", "DETECTORS", "METHOD"))
    args = p.parse_args(argv)
    if args.child:
        n, v, d, method = args.child
        print("CT-JSON " + json.dumps(measure(int(n), int(v), int(d), method, args.repeats)))
        return 0
    from _machine import machine_info

    from spinv.atomic import atomic_write_json
    from spinv.operators.ct_matrix import estimate_operator_bytes

    machine = machine_info(1, precision="float32 (skimage: float64)")
    rows = []
    for n, v, d in configurations(args.sizes, args.views, not args.no_clinical):
        fits = estimate_operator_bytes(n, v, d) <= args.budget_gib * 2**30
        for method in args.methods:
            if method == "matrix" and not fits:
                rows.append({"image_size": n, "n_angles": v, "n_detectors": d,
                             "method": method, "skipped": "matrix estimate over the budget"})
                continue
            reps = args.repeats if v * d * n < 5e7 else 1
            row = run_child(n, v, d, method, reps, args.budget_gib)
            rows.append(row)
            print(json.dumps(row), flush=True)
    machine["load_average_at_end"] = list(os.getloadavg())
    done = [r for r in rows if "fwd_adj_cpu_s" in r]
    atomic_write_json(args.out, {
        "benchmark": "CT operator at clinical sizes and its scaling (issue 16.5)",
        "machine": machine, "budget_gib": args.budget_gib,
        "statistic": "median CPU seconds of forward + adjoint of one image, one thread; "
                     "memory: the child's peak RSS minus its RSS after imports",
        "results": rows,
    })
    plot(done, args.plot)
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
