#!/usr/bin/env bash
# GPU path, measured when a GPU is available (issue 16.6). At most ~8 minutes.
#
#   bash benchmarks/gpu.sh [--cpu-only] [--quick] [--out benchmarks/results/gpu.json]
#
# Runs, in one process, on CUDA (when torch sees a GPU) and on the CPU (torch threads = the
# cores, or $GPU_BENCH_CPU_THREADS):
#   * the CT operator: ParallelBeamCT forward + adjoint, 256^2 / 50 views (cached matrix, CSR
#     on the device) and the LoDoPaB-like 512^2 / 1000 views / 513 detectors matrix-free path;
#     batch 1 and 8 (the matrix-free path: batch 8 on CUDA only), and the adjointness
#     <Ax,y> - <x,A*y> on the device;
#   * a PDHG solve: TV reconstruction of 256^2 CT data, 200 iterations (tol 0);
#   * an LPG train step: LearnedProximalGradient (ordinary and C4), width 96, 8 iterations,
#     128^2 CT, batch 1, float32, Adam.
# Times are medians after a warm-up, with torch.cuda.synchronize() around each call. Writes JSON
# with the machine, the GPU name, torch/CUDA versions and the load. Without CUDA (or with
# --cpu-only) the CUDA rows are recorded as skipped and the CPU rows still run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export SPINV_CACHE=${SPINV_CACHE:-$PWD/.cache/spinv}
exec timeout "${GPU_BENCH_TIMEOUT:-480}" "$PY" - "$@" <<'EOF'
import argparse, json, math, os, statistics, sys, time
from pathlib import Path

sys.path[:0] = ["src", "benchmarks"]
import torch
from _machine import machine_info
from spinv.atomic import atomic_write_json
from spinv.learned import LearnedProximalGradient
from spinv.operators import ParallelBeamCT
from spinv.variational.reconstruct import VariationalOptions, reconstruct_variational

p = argparse.ArgumentParser(prog="benchmarks/gpu.sh")
p.add_argument("--cpu-only", action="store_true")
p.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (smoke test)")
p.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
args = p.parse_args()
Q = args.quick
REPEATS = 2 if Q else 5


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev, repeats=REPEATS):
    fn(); sync(dev)  # warm-up (moves matrices, cuDNN autotune)
    ts = []
    for _ in range(repeats):
        sync(dev); t0 = time.perf_counter(); fn(); sync(dev)
        ts.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(ts), "min_s": min(ts), "repeats": repeats}


def phantom(n, b=1, dev="cpu"):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 1, n, n, generator=g).to(dev)


def bench_ct(dev):
    rows = []
    geoms = [(64, 20, None, False)] if Q else [(256, 50, None, None), (512, 1000, 513, True)]
    for n, views, det, free in geoms:
        op = ParallelBeamCT(n, views, n_detectors=det, matrix_free=free).to(dev)
        # LoDoPaB-like: batch 8 only on the GPU (about a minute per call on a CPU core)
        for b in (1, 8) if (not free or dev.type == "cuda") else (1,):
            x = phantom(n, b, dev)
            y = op(x)
            with torch.no_grad():
                t = timed(lambda: op.adjoint(op(x)), dev, 2 if views >= 1000 else REPEATS)
            lhs, rhs = float((op(x) * y).sum()), float((x * op.adjoint(y)).sum())
            rows.append({"what": "ct fwd+adj", "size": n, "views": views,
                         "detectors": op.n_detectors, "batch": b,
                         "path": "matrix-free" if op._free is not None else "matrix",
                         "per_image_s": t["median_s"] / b, **t,
                         "adjoint_rel_error": abs(lhs - rhs) / abs(lhs)})
    return rows


def bench_pdhg(dev):
    n = 64 if Q else 256
    op = ParallelBeamCT(n, 50).to(dev)
    y = op(phantom(n, 1, dev))
    opts = VariationalOptions(iterations=20 if Q else 200, tol=0.0)
    u = {}
    t = timed(lambda: u.update(r=reconstruct_variational(op, y, "tv", 1e-2, opts)), dev, 2)
    return [{"what": "pdhg tv solve", "size": n, "iterations": opts.iterations, **t,
             "output_device": str(u["r"].device)}]


def bench_lpg(dev):
    n = 32 if Q else 128
    op = ParallelBeamCT(n, 50).to(dev)
    x = phantom(n, 1, dev)
    y = op(x)
    rows = []
    for group in (None, "C4"):
        model = LearnedProximalGradient(op, group=group, width=96, iterations=8, seed=0).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * torch.mean((model(y) - x) ** 2)
            loss.backward()
            opt.step()

        rows.append({"what": "lpg train step", "model": group or "ordinary", "size": n,
                     "width": 96, "iterations": 8, "batch": 1, **timed(step, dev)})
    return rows


devices = []
if not args.cpu_only and torch.cuda.is_available():
    devices.append(torch.device("cuda"))
devices.append(torch.device("cpu"))
threads = int(os.environ.get("GPU_BENCH_CPU_THREADS", os.cpu_count() or 1))
torch.set_num_threads(threads)
info = machine_info(threads, precision="float32", quick=Q,
                    cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
results, skipped = [], []
if torch.device("cuda") not in devices:
    skipped.append("cuda: " + ("--cpu-only" if args.cpu_only else "torch sees no CUDA device"))
for dev in devices:
    for bench in (bench_ct, bench_pdhg, bench_lpg):
        t0 = time.perf_counter()
        try:
            for row in bench(dev):
                row["device"] = dev.type
                results.append(row)
                print(json.dumps(row), flush=True)
        except Exception as err:  # record, keep going: a CPU assumption in src/ shows here
            results.append({"what": bench.__name__, "device": dev.type,
                            "failed": f"{type(err).__name__}: {err}"})
            print(f"FAILED {bench.__name__} on {dev}: {err}", flush=True)
        print(f"# {bench.__name__} on {dev}: {time.perf_counter() - t0:.1f} s", flush=True)
cpu = {(r["what"], r.get("size"), r.get("batch"), r.get("model")): r for r in results
       if r["device"] == "cpu" and "median_s" in r}
for r in results:
    key = (r["what"], r.get("size"), r.get("batch"), r.get("model"))
    if r["device"] == "cuda" and "median_s" in r and key in cpu:
        r["speedup_vs_cpu"] = cpu[key]["median_s"] / r["median_s"]
        print(f"{r['what']:16s} N={r.get('size')} B={r.get('batch')} {r.get('model') or ''}: "
              f"cuda {r['median_s']:.4f} s, cpu {cpu[key]['median_s']:.4f} s, "
              f"x{r['speedup_vs_cpu']:.1f}")
info["load_average_at_end"] = list(os.getloadavg())
atomic_write_json(args.out, {"benchmark": "GPU path vs CPU in one run (issue 16.6)",
                             "machine": info, "skipped": skipped, "results": results})
print(f"wrote {args.out}")
EOF
