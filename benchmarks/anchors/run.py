"""Anchors in the same run (issue 16.1): reference implementations timed beside spinv.

Usage::

    python benchmarks/anchors/run.py [--threads 1] [--sizes 64 128 256] [--rounds 2]
                                     [--repeats 3] [--no-authors] [--out FILE]

One invocation times, minutes apart on the same machine and the same thread count,

* scikit-image ``radon`` / ``iradon`` (unfiltered and ramp FBP, ``circle=False``) against
  ``ParallelBeamCT`` forward / adjoint / FBP at each ``--sizes`` (50 views), in this process;
* the authors' code, in the throw-away venv of ``benchmarks/anchors/setup_authors.sh``
  (``$SPINV_ANCHORS_VENV``, default ``.cache/anchors-venv``; code from
  ``$SPINV_AUTHORS_CODE``, default ``.cache/authors``): the learned forward-backward train step
  of ``fsherry/equivariant_image_recon`` (ordinary and C4-equivariant, width 96, 8 iterations,
  memory 5, batch 1, float32, 128^2 CT with 50 views) against spinv's
  ``LearnedProximalGradient`` at the same settings. The two sides alternate in ``--rounds``
  rounds of ``--repeats`` steps each, so a load change hits both. An anchor that cannot run
  (venv or code missing, import error) is *skipped* with the reason in the JSON.

The speedup is reference time / spinv time (> 1: spinv faster), from the median CPU time of
the process (one thread: other processes barely perturb it) and from the median wall time.
Writes ``benchmarks/results/anchors.json`` (machine, threads, precision, versions, load
average before and after) and prints the ratio table with each target beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks"), str(HERE)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _machine import machine_info  # noqa: E402
from ours import (  # noqa: E402
    bilevel_gradient,
    bilevel_problem,
    ct_vs_skimage,
    denoiser_train_step,
    lpg_problem,
    lpg_train_step,
    timed,
)

from spinv.atomic import atomic_write_json  # noqa: E402

#: the issue's targets: spinv time <= reference time / target
TARGETS = {"skimage": 1.0, "lpg": 1.5, "bilevel": 1.0, "denoiser": 1.0,
           "certified_over_dncnn_max": 1.2}
DENOISER = {"width": 64, "depth": 10, "crop": 48, "batch": 5}
BILEVEL = {"alpha": 2e-3, "eps": 1e-2, "gamma": 1e-2, "ll_tol": 1e-10, "ll_maxit": 1000,
           "cg_tol": 1e-6, "cg_maxit": 1000}
LPG = {"size": 128, "width": 96, "iterations": 8, "memory": 5}


def _med(side: dict, key: str) -> float:
    return statistics.median(side[key])


def _summarise(row: dict, target: float) -> dict:
    ref, ours = row["reference"], row["ours"]
    row.update(
        reference_cpu_s=_med(ref, "cpu_s"), ours_cpu_s=_med(ours, "cpu_s"),
        reference_wall_s=_med(ref, "wall_s"), ours_wall_s=_med(ours, "wall_s"),
        speedup_cpu=_med(ref, "cpu_s") / _med(ours, "cpu_s"),
        speedup_wall=_med(ref, "wall_s") / _med(ours, "wall_s"),
        target_speedup=target,
    )
    row["meets_target"] = row["speedup_cpu"] >= target
    return row


def authors_env() -> tuple[Path, Path]:
    venv = Path(os.environ.get("SPINV_ANCHORS_VENV", ROOT / ".cache/anchors-venv"))
    code = Path(os.environ.get("SPINV_AUTHORS_CODE", ROOT / ".cache/authors"))
    return venv, code


def run_authors(task: str, payload: Path, repeats: int, threads: int) -> dict:
    """Run ``authors.py TASK`` in the anchors venv; the parsed JSON or ``{"skipped": why}``."""
    venv, code = authors_env()
    python = venv / "bin/python"
    if not python.is_file():
        return {"skipped": f"no anchors venv at {venv}: run benchmarks/anchors/setup_authors.sh"}
    env = {**os.environ, "SPINV_AUTHORS_CODE": str(code), "OMP_NUM_THREADS": str(threads),
           "SPINV_ANCHOR_THREADS": str(threads), "PYTHONPATH": ""}
    proc = subprocess.run([str(python), str(HERE / "authors.py"), task, str(payload),
                           str(repeats)], capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("ANCHOR-JSON "):
            return json.loads(line[len("ANCHOR-JSON "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"skipped": f"{task} failed in the anchors venv (exit {proc.returncode}): {tail}"}


def _merge(acc: dict | None, new: dict) -> dict:
    if acc is None:
        return new
    for key in ("wall_s", "cpu_s"):
        acc[key] += new[key]
    return acc


def lpg_anchor(group: str | None, rounds: int, repeats: int, threads: int) -> dict:
    """The authors' train step and spinv's, alternating in ``rounds``."""
    op, x, y = lpg_problem(LPG["size"])
    m = op.matrix
    payload = ROOT / ".cache/anchors/lpg_input.npz"
    payload.parent.mkdir(parents=True, exist_ok=True)
    np.savez(payload, x=x.numpy(), y=y.numpy(), data=m.data, indices=m.indices,
             indptr=m.indptr, shape=np.array(m.shape), angles=op.angles.double().numpy(),
             n_angles=op.n_angles, n_detectors=op.n_detectors, **LPG)
    task = "lpg-equivariant" if group else "lpg-ordinary"
    step, params = lpg_train_step(op, x, y, group, LPG["width"], LPG["iterations"],
                                  LPG["memory"])
    ref = ours = None
    for _ in range(rounds):
        got = run_authors(task, payload, repeats, threads)
        if "skipped" in got:
            return {"anchor": f"authors {task}", "skipped": got["skipped"]}
        info = {k: v for k, v in got.items() if k not in ("wall_s", "cpu_s")}
        ref = _merge(ref, got)
        ours = _merge(ours, timed(step, repeats))
    row = {"anchor": f"authors {task}", "size": LPG["size"], "settings": dict(LPG, batch=1),
           "reference": ref, "ours": ours, "reference_info": info, "ours_parameters": params,
           "ours_model": f"LearnedProximalGradient(group={group!r})"}
    return _summarise(row, TARGETS["lpg"])


def bilevel_anchor(size: int, rounds: int, repeats: int, threads: int) -> list[dict]:
    """bilevelmri's objective + gradient vs spinv's (default and authors-like settings)."""
    import torch.fft as tfft

    ll, s = bilevel_problem(size)
    payload = ROOT / ".cache/anchors/bilevel_input.npz"
    payload.parent.mkdir(parents=True, exist_ok=True)
    y = tfft.ifftshift(ll.y, dim=(-2, -1))[:, 0].numpy()
    s_fft = tfft.ifftshift(s, dim=(-2, -1))
    np.savez(payload, x=ll.u_true.real[:, 0].numpy(), y=y, s=s_fft.numpy(), **BILEVEL)
    runs = {k: bilevel_gradient(ll, s, BILEVEL["alpha"], k) for k in ("default", "authors-like")}
    ref, ours = None, {k: None for k in runs}
    for _ in range(rounds):
        got = run_authors("bilevel-gradient", payload, repeats, threads)
        if "skipped" in got:
            return [{"anchor": "authors bilevelmri gradient", "skipped": got["skipped"]}]
        grad_s = np.asarray(got.pop("grad_s")).reshape(size, size)
        info = {k: v for k, v in got.items() if k not in ("wall_s", "cpu_s")}
        ref = _merge(ref, got)
        for k, (fn, _) in runs.items():
            ours[k] = _merge(ours[k], timed(fn, repeats, warmup=0))
    rows = []
    for k, (_, res) in runs.items():
        g = tfft.ifftshift(res["value"].grad_s.reshape(size, size), dim=(-2, -1)).numpy()
        cosine = float((g * grad_s).sum() / (np.linalg.norm(g) * np.linalg.norm(grad_s)))
        row = {"anchor": f"authors bilevelmri ({k})", "size": size,
               "settings": dict(BILEVEL, spinv=k, pattern="random weights in [0,1]",
                                images=1, dtype="float64"),
               "reference": ref, "ours": ours[k], "reference_info": info,
               "gradient_cosine_vs_authors": cosine}
        rows.append(_summarise(row, TARGETS["bilevel"]))
    return rows


def denoiser_anchor(rounds: int, repeats: int, threads: int) -> list[dict]:
    """non-expansive-odes' Euler denoiser and DnCNN train steps vs spinv's; plus spinv's
    certified step over its DnCNN step (issue 16.3, target <= 1.2)."""
    gen = torch.Generator().manual_seed(0)
    shape = (DENOISER["batch"], 1, DENOISER["crop"], DENOISER["crop"])
    x = torch.rand(shape, generator=gen)
    y = x + 0.15 * torch.randn(shape, generator=gen)
    payload = ROOT / ".cache/anchors/denoiser_input.npz"
    payload.parent.mkdir(parents=True, exist_ok=True)
    np.savez(payload, x=x.numpy(), y=y.numpy(), **DENOISER)
    w, d, c = DENOISER["width"], DENOISER["depth"], DENOISER["crop"]
    pairs = {"nonexpansive-euler": "euler", "dncnn": "dncnn"}
    built = {k: denoiser_train_step(k, w, d, c, x, y) for k in pairs.values()}
    steps = {k: v[0] for k, v in built.items()}
    ref, ours, info = dict.fromkeys(pairs), dict.fromkeys(pairs.values()), {}
    for _ in range(rounds):
        for task, kind in pairs.items():
            got = run_authors(task, payload, repeats, threads)
            if "skipped" in got:
                return [{"anchor": f"authors {task}", "skipped": got["skipped"]}]
            info[task] = {k: v for k, v in got.items() if k not in ("wall_s", "cpu_s")}
            ref[task] = _merge(ref[task], got)
            ours[kind] = _merge(ours[kind], timed(steps[kind], repeats))
    rows = [_summarise({"anchor": f"authors {task}", "size": c, "settings": dict(DENOISER),
                        "reference": ref[task], "ours": ours[kind], "reference_info": info[task],
                        "ours_model": "euler certified (step + enforce_constraints)"
                        if kind == "euler" else "DnCNN"}, TARGETS["denoiser"])
            for task, kind in pairs.items()]
    ratio = {"anchor": "spinv certified / DnCNN", "size": c, "settings": dict(DENOISER),
             "ratio_cpu": _med(ours["euler"], "cpu_s") / _med(ours["dncnn"], "cpu_s"),
             "ratio_wall": _med(ours["euler"], "wall_s") / _med(ours["dncnn"], "wall_s"),
             "target_max": TARGETS["certified_over_dncnn_max"]}
    ratio["meets_target"] = ratio["ratio_cpu"] <= ratio["target_max"]
    enforce = timed(built["euler"][1].enforce_constraints, repeats)  # the certification alone
    ratio["certification_cpu_s"] = _med(enforce, "cpu_s")
    ratio["certification_share"] = ratio["certification_cpu_s"] / _med(ours["euler"], "cpu_s")
    step_cpu, dncnn_cpu = _med(ours["euler"], "cpu_s"), _med(ours["dncnn"], "cpu_s")
    ratio["ratio_without_certification_cpu"] = (step_cpu - ratio["certification_cpu_s"]) / dncnn_cpu
    return rows + [ratio]


def print_table(rows: list[dict]) -> None:
    print(f"{'anchor':<28} {'N':>4} {'ref cpu s':>10} {'ours cpu s':>10} {'speedup':>8} "
          f"{'(wall)':>7} {'target':>7}  met")
    for r in rows:
        if "skipped" in r:
            print(f"{r['anchor']:<28} SKIPPED: {r['skipped']}")
            continue
        if "ratio_cpu" in r:  # a ratio of two spinv steps, lower is better
            print(f"{r['anchor']:<28} {r['size']:>4} {'':>10} {'':>10} {r['ratio_cpu']:>7.2f}x "
                  f"{r['ratio_wall']:>6.2f}x {'<=' + str(r['target_max']):>6}x  "
                  f"{'yes' if r['meets_target'] else 'NO'}")
            continue
        print(f"{r['anchor']:<28} {r['size']:>4} {r['reference_cpu_s']:>10.4f} "
              f"{r['ours_cpu_s']:>10.4f} {r['speedup_cpu']:>7.2f}x {r['speedup_wall']:>6.2f}x "
              f"{r['target_speedup']:>6.1f}x  {'yes' if r['meets_target'] else 'NO'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--n-angles", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3, help="timed steps per side and round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--ct-repeats", type=int, default=20)
    p.add_argument("--bilevel-sizes", type=int, nargs="*", default=[64])
    p.add_argument("--no-authors", action="store_true", help="scikit-image anchors only")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/anchors.json")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    import scipy
    import skimage

    machine = machine_info(args.threads, precision="float32 (scikit-image: float64, its own; "
                           "bilevelmri: float64 on both sides)", scipy=scipy.__version__,
                           skimage=skimage.__version__)
    rows = []
    for n in args.sizes:
        for row in ct_vs_skimage(n, args.n_angles, args.ct_repeats, max(3, args.ct_repeats // 4)):
            rows.append(_summarise(row, TARGETS["skimage"]))
    if not args.no_authors:
        for group in (None, "C4"):
            rows.append(lpg_anchor(group, args.rounds, args.repeats, args.threads))
        for n in args.bilevel_sizes:
            rows += bilevel_anchor(n, args.rounds, max(1, args.repeats - 1), args.threads)
        rows += denoiser_anchor(args.rounds, args.repeats, args.threads)
    machine["load_average_at_end"] = list(os.getloadavg())
    print(f"# {machine['cpu_model']} | torch {machine['torch']} | threads {args.threads} | "
          f"float32 | load {machine['load_average_at_start']} -> {machine['load_average_at_end']}")
    print_table(rows)
    venv, code = authors_env()
    atomic_write_json(args.out, {
        "benchmark": "anchors: reference implementations beside spinv in one run (issue 16.1)",
        "machine": machine, "speedup": "reference seconds / spinv seconds (median)",
        "authors_venv": str(venv), "authors_code": str(code), "targets": TARGETS,
        "results": rows,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
