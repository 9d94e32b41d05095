"""Benchmark: ordinary vs equivariant learned proximal gradient (Algorithm 5), CT and MRI.

Measures, at equal width (|H| * fields = 96), 8 iterations, batch 1:

* train step: forward + backward + Adam step (loss ||Phi(y) - x||^2), seconds;
* inference: forward under ``torch.no_grad``, for the model as trained and for ``export()``
  (equivariant filter banks folded into plain ``nn.Conv2d``), seconds.

Models are timed round-robin (one repetition of each in turn) and the median and the minimum
are reported, so a load spike on a shared machine hits all models alike; the minimum is the
least contaminated by other processes. The CPU time of the process (``time.process_time``,
one thread) is recorded as well: on a busy machine it is much less sensitive to other
processes than wall time, so the ratios are best read from it. Finally the exact extra work
of an equivariant train step (building the expanded filter banks and backpropagating through
them, :func:`expansion_cpu_time`) is timed in isolation; ``train_ratio_estimated`` adds it to
the ordinary step, a ratio that other processes barely perturb. Ratios are equivariant /
ordinary. The reference is the thesis authors' code: 1.52 s (ordinary) / 1.58 s
(equivariant) per CT train step at 128^2, one thread, 8 iterations, width 96.

Modes: ``fp32`` (default memory layout), ``fp32-cl`` (``channels_last``), ``bf16-cl``
(``channels_last`` and ``torch.autocast`` bfloat16 for the networks; the operator and the data
term stay float32, see :func:`spinv.nn.cnn_blocks.physics_precision`).

Usage: ``python benchmarks/learned.py [--threads 1] [--sizes 64 128] [--repeats 7] [--modes ...]
[--quick]``.
Prints a table and writes ``benchmarks/results/learned.json`` (atomically).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from _machine import machine_info as _machine_info

from spinv.atomic import atomic_write_json
from spinv.learned import LearnedProximalGradient
from spinv.operators import ParallelBeamCT, SubsampledFourier
from spinv.operators.sampling import variable_density_lines

AUTHORS_CT_128 = {"ordinary": 1.52, "equivariant": 1.58}  # s per train step (thesis code)


def make_problem(kind: str, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    x = ((xx / 0.8) ** 2 + (yy / 0.6) ** 2 < 1).float() * 0.5
    x = x + 0.5 * ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.05).float()
    x = (x + 0.01 * torch.randn(n, n, generator=gen))[None, None]
    if kind == "ct":
        A = ParallelBeamCT(n, n_angles=50)
        return A, A(x), x
    A = SubsampledFourier(variable_density_lines((n, n), 0.25, seed=seed))
    xc = x.to(torch.complex64)
    return A, A(xc), xc


def _time(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call of ``fn``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


MODES = {  # name: (channels_last, autocast dtype or None)
    "fp32": (False, None),
    "fp32-cl": (True, None),
    "bf16-cl": (True, torch.bfloat16),
}


def bench_problem(
    kind: str, n: int, groups, repeats: int, width: int, iterations: int, mode: str = "fp32"
) -> list:
    A, y, x = make_problem(kind, n)
    channels_last, amp = MODES[mode]
    models = {
        g or "ordinary": LearnedProximalGradient(
            A, group=g, width=width, iterations=iterations, seed=0, channels_last=channels_last
        )
        for g in groups
    }

    def autocast():
        return torch.autocast(y.device.type, dtype=amp or torch.float32, enabled=amp is not None)

    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in models.items()}
    exported = {k: m.export() for k, m in models.items()}

    def train_step(name):
        def run():
            opts[name].zero_grad(set_to_none=True)
            with autocast():
                out = models[name](y)
            loss = (out - x).abs().square().sum()
            loss.backward()
            opts[name].step()

        return run

    def infer(model):
        def run():
            with torch.no_grad(), autocast():
                model(y)

        return run

    keys = ("train", "infer", "infer_exported")
    times = {k: {key: [] for key in keys} for k in models}
    cpu = {k: {key: [] for key in keys} for k in models}
    for name in models:  # warm-up (allocations, operator caches)
        train_step(name)()
        infer(models[name])()
        infer(exported[name])()
    for _ in range(repeats):
        for name in models:
            for key, fn in (
                ("train", train_step(name)),
                ("infer", infer(models[name])),
                ("infer_exported", infer(exported[name])),
            ):
                wall, used = _time(fn)
                times[name][key].append(wall)
                cpu[name][key].append(used)
    overhead = {name: expansion_cpu_time(models[name]) for name in models}
    rows = []
    base = {k: statistics.median(v) for k, v in times["ordinary"].items()}
    base_min = {k: min(v) for k, v in times["ordinary"].items()}
    base_cpu = {k: statistics.median(v) for k, v in cpu["ordinary"].items()}
    for name, t in times.items():
        med = {k: statistics.median(v) for k, v in t.items()}
        low = {k: min(v) for k, v in t.items()}
        used = {k: statistics.median(v) for k, v in cpu[name].items()}
        rows.append(
            {
                "problem": kind,
                "size": n,
                "mode": mode,
                "model": name,
                "channels": models[name].blocks[0].lift.out_channels,
                "parameters": sum(p.numel() for p in models[name].parameters()),
                "train_step_s": med["train"],
                "inference_s": med["infer"],
                "inference_exported_s": med["infer_exported"],
                "train_step_min_s": low["train"],
                "inference_min_s": low["infer"],
                "inference_exported_min_s": low["infer_exported"],
                "train_ratio": med["train"] / base["train"],
                "inference_ratio": med["infer"] / base["infer"],
                "exported_inference_ratio": med["infer_exported"] / base["infer_exported"],
                "train_ratio_min": low["train"] / base_min["train"],
                "exported_inference_ratio_min": low["infer_exported"] / base_min["infer_exported"],
                "train_step_cpu_s": used["train"],
                "inference_cpu_s": used["infer"],
                "inference_exported_cpu_s": used["infer_exported"],
                "train_ratio_cpu": used["train"] / base_cpu["train"],
                "exported_inference_ratio_cpu": used["infer_exported"] / base_cpu["infer_exported"],
                "expansion_cpu_s": overhead[name],
                "train_ratio_estimated": (base_cpu["train"] + overhead[name]) / base_cpu["train"],
                "train_step_all_s": t["train"],
                "inference_exported_all_s": t["infer_exported"],
            }
        )
    return rows


def expansion_cpu_time(model, repeats: int = 10) -> float:
    """CPU seconds to build every expanded filter bank of ``model`` and backpropagate through
    it: the exact extra work of an equivariant train step over the ordinary one (min of
    ``repeats``). 0 for a model without equivariant layers."""
    from spinv.nn.equivariant import GroupConv, LiftingConv, ProjectionConv

    layers = [m for m in model.modules() if isinstance(m, (LiftingConv, GroupConv, ProjectionConv))]
    if not layers:
        return 0.0
    grads = [torch.randn_like(layer.expanded_weight()) for layer in layers]
    best = math.inf
    for _ in range(repeats):
        c0 = time.process_time()
        ws = [layer.expanded_weight() for layer in layers]
        torch.autograd.backward(ws, grads)
        best = min(best, time.process_time() - c0)
    model.zero_grad(set_to_none=True)
    return best


def machine_info(threads: int) -> dict:
    return _machine_info(threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--problems", nargs="+", default=["ct", "mri"], choices=["ct", "mri"])
    p.add_argument("--groups", nargs="+", default=["none", "C4", "C8"])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="sizes 32, 2 repeats (smoke run)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "learned.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [32], 2
    torch.set_num_threads(args.threads)
    groups = [None if g.lower() == "none" else g for g in args.groups]
    if groups[0] is not None:
        groups = [None] + groups
    info = machine_info(args.threads)
    rows = []
    for mode in args.modes:
        for kind in args.problems:
            for n in args.sizes:
                rows += bench_problem(
                    kind, n, groups, args.repeats, args.width, args.iterations, mode
                )
                r = rows[-len(groups) :]
                for row in r:
                    print(
                        f"{mode:>7} {row['problem']:>3} {row['size']:>4} {row['model']:>8} "
                        f"train {row['train_step_s']:.3f}s cpu {row['train_step_cpu_s']:.3f}s "
                        f"(x{row['train_ratio_cpu']:.3f} cpu, x{row['train_ratio']:.3f} wall, "
                        f"x{row['train_ratio_estimated']:.3f} est.)  "
                        f"infer {row['inference_s']:.3f}s  "
                        f"exported {row['inference_exported_s']:.3f}s "
                        f"cpu {row['inference_exported_cpu_s']:.3f}s "
                        f"(x{row['exported_inference_ratio_cpu']:.3f} cpu)",
                        flush=True,
                    )
    summary = {}
    for row in rows:
        if row["problem"] == "ct" and row["size"] == 128 and args.iterations == 8:
            ref = AUTHORS_CT_128["ordinary" if row["model"] == "ordinary" else "equivariant"]
            key = f"speedup_vs_authors_{row['mode']}_{row['model']}"
            summary[key] = ref / row["train_step_s"]
            summary[key + "_best"] = ref / row["train_step_min_s"]
            summary[key + "_cpu"] = ref / row["train_step_cpu_s"]
    payload = {
        "benchmark": "learned proximal gradient, ordinary vs equivariant, equal width",
        "settings": {
            "width": args.width,
            "iterations": args.iterations,
            "memory": 5,
            "batch": 1,
            "repeats": args.repeats,
            "statistic": "median over repeats (and min, less sensitive to contention)",
            "ct": "ParallelBeamCT(n, n_angles=50)",
            "mri": "SubsampledFourier(variable_density_lines(rate=0.25))",
        },
        "machine": info,
        "targets": {
            "train_ratio_max": 1.05,
            "exported_inference_ratio_max": 1.01,
            "speedup_vs_authors_min": 1.5,
            "authors_ct_128_train_step_s": AUTHORS_CT_128,
        },
        "summary": summary,
        "results": rows,
    }
    atomic_write_json(args.out, payload)
    print(f"\nwrote {args.out}")
    for key, value in summary.items():
        print(f"{key}: {value:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
