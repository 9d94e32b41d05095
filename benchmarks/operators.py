"""Benchmark the physics operators: CT forward/adjoint vs scikit-image, MRI forward/adjoint.

Usage::

    python benchmarks/operators.py [--threads 1] [--repeats 20] [--out results/operators.json]

Prints a table and writes JSON (atomically) recording the machine (platform, CPU model, core
count, load average), library versions and the torch thread count. Times are medians of
``--repeats`` calls after a warm-up, in milliseconds; "per image" divides a batched call by the
batch size. scikit-image has no batching, so its per-image time is that of one call. The
scikit-image baseline uses the same geometry (``radon(..., circle=False)``: the same
``ceil(sqrt(2) N)`` bins of unit spacing) and ``iradon(filter_name=None)`` as the unfiltered
back-projection. astra / deepinv are timed too when importable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _machine import machine_info  # noqa: E402

from spinv.atomic import atomic_write_json  # noqa: E402
from spinv.operators import ParallelBeamCT, SubsampledFourier  # noqa: E402
from spinv.operators import ct as ct_module  # noqa: E402
from spinv.operators.sampling import variable_density_lines  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (also builds lazily cast matrices)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _machine(threads: int) -> dict:
    import scipy
    import skimage

    return machine_info(threads, scipy=scipy.__version__, skimage=skimage.__version__)


def _phantom(n: int, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 1, n, n, generator=g)


def bench_ct(sizes, batches, n_angles: int, repeats: int, sk_repeats: int) -> list[dict]:
    from skimage.transform import iradon, radon

    rows = []
    for n in sizes:
        ct_module._MEMO.clear()
        t0 = time.perf_counter()
        angles = torch.linspace(0, np.pi, n_angles + 1, dtype=torch.float64)[:-1].numpy()
        n_det = int(np.ceil(np.sqrt(2) * n))
        matrix = ct_module.build_joseph_matrix(n, angles, n_det, progress=False)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        op = ParallelBeamCT(n, n_angles)  # from the disk cache (written on first use)
        load_s = time.perf_counter() - t0
        theta = np.degrees(op.angles.double().numpy())
        img = _phantom(n, 1)[0, 0].double().numpy()
        sino = radon(img, theta, circle=False)
        sk_fwd = _median_ms(lambda: radon(img, theta, circle=False), sk_repeats)  # noqa: B023
        sk_adj = _median_ms(
            lambda: iradon(sino, theta, output_size=n, filter_name=None, circle=False),  # noqa: B023
            sk_repeats,
        )
        extra = _other_ct_backends(n, n_angles, theta, img, sk_repeats)
        for b in batches:
            x = _phantom(n, b)
            y = op(x)
            fwd = _median_ms(lambda: op(x), repeats)  # noqa: B023
            adj = _median_ms(lambda: op.adjoint(y), repeats)  # noqa: B023
            per_image = (fwd + adj) / b
            rows.append(
                {
                    "operator": "ParallelBeamCT",
                    "image_size": n,
                    "n_angles": n_angles,
                    "n_detectors": op.n_detectors,
                    "nnz": int(matrix.nnz),
                    "build_s": build_s,
                    "cache_load_s": load_s,
                    "batch": b,
                    "forward_ms": fwd,
                    "adjoint_ms": adj,
                    "forward_ms_per_image": fwd / b,
                    "adjoint_ms_per_image": adj / b,
                    "skimage_radon_ms_per_image": sk_fwd,
                    "skimage_iradon_unfiltered_ms_per_image": sk_adj,
                    "speedup_vs_skimage_fwd_plus_adj": (sk_fwd + sk_adj) / per_image,
                    **extra,
                }
            )
    return rows


def _other_ct_backends(n, n_angles, theta, img, repeats) -> dict:
    out: dict = {}
    try:  # pragma: no cover - optional
        import astra  # noqa: F401

        out["astra"] = "importable, not timed (CPU astra needs a separate geometry setup)"
    except ImportError:
        out["astra"] = "not installed"
    try:  # pragma: no cover - optional
        import deepinv

        phys = deepinv.physics.Tomography(angles=n_angles, img_width=n, circle=False)
        x = torch.from_numpy(img).float()[None, None]
        y = phys.A(x)
        out["deepinv_forward_ms_per_image"] = _median_ms(lambda: phys.A(x), repeats)
        out["deepinv_adjoint_ms_per_image"] = _median_ms(lambda: phys.A_adjoint(y), repeats)
    except ImportError:
        out["deepinv"] = "not installed"
    except Exception as err:  # pragma: no cover - version differences
        out["deepinv"] = f"failed: {err}"
    return out


def bench_mri(sizes, batches, repeats: int) -> list[dict]:
    rows = []
    for n in sizes:
        op = SubsampledFourier(variable_density_lines((n, n), 0.25, seed=0))
        for b in batches:
            g = torch.Generator().manual_seed(0)
            x = torch.randn(b, 1, n, n, dtype=torch.complex64, generator=g)
            y = op(x)
            fwd = _median_ms(lambda: op(x), repeats)  # noqa: B023
            adj = _median_ms(lambda: op.adjoint(y), repeats)  # noqa: B023
            rows.append(
                {
                    "operator": "SubsampledFourier",
                    "image_size": n,
                    "batch": b,
                    "forward_ms": fwd,
                    "adjoint_ms": adj,
                    "forward_ms_per_image": fwd / b,
                    "adjoint_ms_per_image": adj / b,
                }
            )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per spinv entry")
    parser.add_argument("--sk-repeats", type=int, default=5, help="timed calls per skimage entry")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--n-angles", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/operators.json")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    machine = _machine(args.threads)
    ct_rows = bench_ct(args.sizes, args.batches, args.n_angles, args.repeats, args.sk_repeats)
    mri_rows = bench_mri(args.sizes + [320], args.batches, args.repeats)

    print(f"# {machine['cpu_model']} | torch {machine['torch']} | threads {args.threads} | "
          f"load {machine['load_average_at_start']}")
    head = (f"{'CT N':>5} {'B':>3} {'fwd ms/img':>11} {'adj ms/img':>11} {'skimage fwd':>12} "
            f"{'skimage adj':>12} {'speedup':>8}")
    print(head)
    for r in ct_rows:
        print(f"{r['image_size']:>5} {r['batch']:>3} {r['forward_ms_per_image']:>11.3f} "
              f"{r['adjoint_ms_per_image']:>11.3f} {r['skimage_radon_ms_per_image']:>12.2f} "
              f"{r['skimage_iradon_unfiltered_ms_per_image']:>12.2f} "
              f"{r['speedup_vs_skimage_fwd_plus_adj']:>7.1f}x")
    for r in {x["image_size"]: x for x in ct_rows}.values():
        print(f"CT {r['image_size']}: matrix build {r['build_s']:.2f} s, cache load "
              f"{r['cache_load_s']:.2f} s, nnz {r['nnz']}")
    print(f"{'MRI N':>5} {'B':>3} {'fwd ms/img':>11} {'adj ms/img':>11}")
    for r in mri_rows:
        print(f"{r['image_size']:>5} {r['batch']:>3} {r['forward_ms_per_image']:>11.3f} "
              f"{r['adjoint_ms_per_image']:>11.3f}")
    atomic_write_json(args.out, {"machine": machine, "ct": ct_rows, "mri": mri_rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
