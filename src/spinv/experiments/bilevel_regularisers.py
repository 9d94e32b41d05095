"""Lower-level regulariser comparison TV / wavelet / H1 (thesis Sec. 1.3.4, Table 1.1).

Each regulariser gets its own beta (chosen so the rates are comparable); the table lists the
training and held-out SSIM/PSNR (mean ± std) with the sampling rate.

``python -m spinv.experiments.bilevel_regularisers configs/sampling-regularisers.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.experiments.bilevel_common import cli, load_experiment, run_point

DEFAULTS = {"regularisers": {"tv": 1e-2, "wavelet": 1e-2, "h1": 1e-2}}


def run(config: Path, out: Path, log=print) -> dict:
    base, exp = load_experiment(config, DEFAULTS)
    rows = []
    for reg, beta in exp["regularisers"].items():
        m = run_point(base, out, reg, log, regulariser=reg, beta=float(beta))
        tr, te = m["results"]["learned_train"], m["results"]["learned"]
        rows.append({"regulariser": reg, "beta": float(beta), "sampling_rate": m["sampling_rate"],
                     "alpha": m["alpha"], "train": tr, "test": te})
    lines = ["| | Regulariser (rate) | SSIM | PSNR |", "|---|---|---|---|"]
    for split in ("train", "test"):
        for r in rows:
            x = r[split]
            lines.append(f"| {split} | {r['regulariser']} ({100 * r['sampling_rate']:.1f}%) | "
                         f"{x['ssim']:.3f} ± {x['ssim_std']:.3f} | "
                         f"{x['psnr']:.1f} ± {x['psnr_std']:.1f} |")
    table = "\n".join(lines)
    log(table)
    from spinv.atomic import atomic_write_bytes

    atomic_write_bytes(out / "table_1_1.md", (table + "\n").encode())
    return {"experiment": "regularisers", "rows": rows, "table": table, "base": base.to_dict()}


def main(argv=None) -> int:
    return cli(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
