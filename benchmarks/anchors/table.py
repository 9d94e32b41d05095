"""The README's performance table, generated from the anchors JSON (and the CT scaling JSON).

Usage: ``python benchmarks/anchors/table.py [--anchors FILE] [--ct FILE]`` prints Markdown:
one row per anchor (reference and spinv median CPU seconds, the speedup in CPU and wall time,
the target and whether it is met), the conditions line (CPU, threads, precision, load), the
anchors that were skipped with their reason, and -- if the CT scaling JSON exists -- the two
clinical CT geometries against scikit-image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def anchors_table(data: dict) -> list[str]:
    m = data["machine"]
    lines = [
        f"Measured {m['timestamp_utc']} on {m['cpu_model']} ({m['cpu_count']} cores), "
        f"{m['torch_threads']} thread, {m.get('precision', 'float32')}, torch {m['torch']}, "
        f"numpy {m['numpy']}; load average {m['load_average_at_start'][0]:.1f} -> "
        f"{m['load_average_at_end'][0]:.1f}. Speedup = reference time / spinv time "
        "(median CPU time of each process; wall time in brackets).",
        "",
        "| anchor | N | reference (s) | spinv (s) | speedup CPU (wall) | target | met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    skipped = []
    for r in data["results"]:
        if "skipped" in r:
            skipped.append(f"- {r['anchor']}: skipped -- {r['skipped']}")
        elif "ratio_cpu" in r:
            lines.append(f"| {r['anchor']} (lower is better) | {r['size']} | | | "
                         f"{r['ratio_cpu']:.2f}x ({r['ratio_wall']:.2f}x) | "
                         f"<= {r['target_max']}x | {'yes' if r['meets_target'] else 'no'} |")
            if "certification_share" in r:
                lines.append(f"| ... of which certification | {r['size']} | | "
                             f"{r['certification_cpu_s']:.3g} | "
                             f"{100 * r['certification_share']:.0f}% of the step; without it "
                             f"{r['ratio_without_certification_cpu']:.2f}x | | |")
        else:
            label = r["anchor"] + (" (spinv: certified)" if "certified" in r.get("ours_model", "")
                                   else "")
            lines.append(f"| {label} | {r['size']} | {r['reference_cpu_s']:.4g} | "
                         f"{r['ours_cpu_s']:.4g} | {r['speedup_cpu']:.2f}x "
                         f"({r['speedup_wall']:.2f}x) | >= {r['target_speedup']}x | "
                         f"{'yes' if r['meets_target'] else 'no'} |")
    shims = sorted({s for r in data["results"] for s in r.get("reference_info", {})
                    .get("shims", [])})
    if shims:
        lines += ["", "Compatibility shims applied to the authors' code:"]
        lines += [f"- {s}" for s in shims]
    if skipped:
        lines += ["", *skipped]
    return lines


def ct_table(data: dict) -> list[str]:
    rows = {(r["image_size"], r["n_angles"], r["n_detectors"], r["method"]): r
            for r in data["results"] if "fwd_adj_cpu_s" in r}
    lines = ["", "| CT geometry | path (auto) | spinv fwd+adj (s) | memory (MiB) | "
             "skimage fwd+adj (s) | skimage memory (MiB) | speedup |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for n, v, d in ((512, 50, 725), (512, 1000, 513)):
        ours, sk = rows.get((n, v, d, "auto")), rows.get((n, v, d, "skimage"))
        if not ours or not sk:
            continue
        lines.append(f"| {n}^2, {v} views, {d} detectors | {ours['path']} | "
                     f"{ours['fwd_adj_cpu_s']:.3g} | {ours['peak_memory_bytes'] / 2**20:.0f} | "
                     f"{sk['fwd_adj_cpu_s']:.3g} | {sk['peak_memory_bytes'] / 2**20:.0f} | "
                     f"{sk['fwd_adj_cpu_s'] / ours['fwd_adj_cpu_s']:.1f}x |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--anchors", type=Path, default=ROOT / "benchmarks/results/anchors.json")
    p.add_argument("--ct", type=Path, default=ROOT / "benchmarks/results/ct_scaling.json")
    args = p.parse_args(argv)
    lines = anchors_table(json.loads(args.anchors.read_text()))
    if args.ct.is_file():
        lines += ct_table(json.loads(args.ct.read_text()))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
