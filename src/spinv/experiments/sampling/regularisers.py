"""Lower-level regulariser comparison TV / wavelet / H1 (thesis Sec. 1.3.4, Table 1.1).

Each regulariser gets its own beta (chosen so the rates are comparable); the table lists the
training and held-out SSIM/PSNR (mean ± std) with the sampling rate.

``spinv experiment run sampling regularisers configs/sampling-regularisers.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_write_text
from spinv.experiments.protocol import Progress
from spinv.experiments.sampling.common import Points, write_summary
from spinv.experiments.sampling.config import RegularisersConfig

__all__ = ["run"]


def run(cfg: RegularisersConfig, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """One learning run per regulariser; ``out/table_1_1.md`` and ``summary.json``."""
    points = Points(cfg.base, out, len(cfg.regularisers), progress, "regularisers")
    rows = []
    for reg, beta in cfg.regularisers.items():
        m = points.run(reg, regulariser=reg, beta=float(beta))
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
    atomic_write_text(Path(out) / "table_1_1.md", table + "\n")
    return write_summary(out, {"experiment": "regularisers", "rows": rows, "table": table,
                               "base": cfg.base.to_dict()})
