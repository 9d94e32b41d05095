"""Learned Cartesian lines vs Gozcu et al. greedy lines vs variable-density lines, with the
number of lower-level solves (thesis Sec. 1.3.6, Tables 1.3-1.4).

The learned line pattern is thresholded and its alpha re-tuned; the greedy method uses that
alpha during selection (as in the thesis), then every pattern's alpha is re-tuned on the
training set. Solve counts: ours = 2 x evaluations (solution + adjoint), greedy = one per
candidate evaluation, both with the training batch as one solve.

With ``base.beta_continuation`` set, the learned lines come from
:func:`spinv.bilevel.learn.learn_continuation`; ``direct_check: true`` also runs the thesis'
direct learning (full-sampling start at the final beta, no continuation, no baselines) and
records both final values of the training objective (1.2), the criterion that decides between
the two optimisation strategies (no held-out data is used for that choice).

``spinv experiment run sampling lines configs/sampling-lines.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_write_text
from spinv.bilevel.baselines import gozcu_solve_count
from spinv.experiments.protocol import Progress
from spinv.experiments.sampling.common import Points, write_summary
from spinv.experiments.sampling.config import LinesConfig

__all__ = ["run"]


def _row(label: str, r: dict) -> dict:
    return {"pattern": label, "sampling_rate": r["sampling_rate"], "ssim": r["ssim"],
            "ssim_std": r["ssim_std"], "psnr": r["psnr"], "psnr_std": r["psnr_std"]}


def _training(m: dict) -> dict:
    t = m["training"]
    return {"objective": t["objective"], "continuous_training_loss": t["loss"],
            "continuous_rate": t["continuous_rate"], "sampling_rate": m["sampling_rate"],
            "thresholded_training_loss": t["threshold_train_loss"],
            "lbfgsb_iterations": t["lbfgsb_iterations"],
            "effective_lower_level_solves": t["effective_lower_level_solves"],
            "beta_continuation": t["beta_continuation"]}


def _table(rows: list[dict], solves: dict, strategies: dict, beta: float) -> str:
    lines = ["| Pattern | rate | SSIM | PSNR |", "|---|---|---|---|"]
    lines += [f"| {r['pattern']} | {100 * r['sampling_rate']:.1f}% | {r['ssim']:.3f} ± "
              f"{r['ssim_std']:.3f} | {r['psnr']:.1f} ± {r['psnr_std']:.1f} |" for r in rows]
    lines += ["", f"lower-level solves: ours {solves['ours_effective_lower_level_solves']}, "
              f"Gozcu {solves['gozcu_lower_level_solves']} (free pattern at this rate would "
              f"need {solves['gozcu_free_pattern_formula']})"]
    for name, s in strategies.items():
        lines.append(f"training objective (1.2) at beta={beta:g}, {name}: {s['objective']:.4f} "
                     f"(continuous rate {100 * s['continuous_rate']:.1f}%, thresholded training "
                     f"loss {s['thresholded_training_loss']:.4f})")
    return "\n".join(lines)


def run(cfg: LinesConfig, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """The lines comparison (module docstring); ``out/tables_1_3_1_4.md`` and
    ``summary.json``."""
    base, beta = cfg.base, float(cfg.beta)
    direct = cfg.direct_check and bool(base.beta_continuation)
    points = Points(base, out, 2 if direct else 1, progress, "lines")
    rows, strategies = [], {}
    if direct:
        d = points.run("lines_direct", parametrisation="lines", beta=beta,
                       beta_continuation=None, baselines=[])
        strategies["direct"] = _training(d)
        rows.append(_row("our method, thesis direct (no continuation)", d["results"]["learned"]))
    m = points.run("lines", parametrisation="lines", beta=beta,
                   baselines=["variable_density_lines", "gozcu"])
    strategies["continuation" if base.beta_continuation else "direct"] = _training(m)
    res = m["results"]
    label = "our method" + (", beta continuation" if base.beta_continuation else "")
    rows.insert(0, _row(label, res["learned"]))
    rows += [_row("Gozcu et al. 2018", res["gozcu"]),
             _row("variable-density lines", res["variable_density_lines"])]
    solves = {
        "ours_effective_lower_level_solves": m["training"]["effective_lower_level_solves"],
        "gozcu_lower_level_solves": res["gozcu"]["lower_level_solves"],
        "gozcu_formula": gozcu_solve_count(base.size, m["sampling_rate"]),
        "gozcu_free_pattern_formula": gozcu_solve_count(base.size * base.size,
                                                        m["sampling_rate"]),
    }
    table = _table(rows, solves, strategies, beta)
    atomic_write_text(Path(out) / "tables_1_3_1_4.md", table + "\n")
    return write_summary(out, {
        "experiment": "lines", "rows": rows, "solves": solves, "strategies": strategies,
        "gozcu_lines": res["gozcu"].get("lines"), "gozcu_seconds": res["gozcu"].get("seconds"),
        "learn_seconds": m["training"]["learn_seconds"], "table": table,
        "base": base.to_dict()})
