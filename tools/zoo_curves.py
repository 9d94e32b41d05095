"""Learning curves of every shipped model (issue 14: "results/ holds the learning curves and
the convergence evidence for every shipped model").

For each zoo entry with a ``log.jsonl``: the training loss (smoothed over a window of 2 % of the
steps) and, where the run validated, the validation PSNR, with the convergence test of issue 14
-- the validation PSNR change over the last 20 % of the *scheduled* steps -- written beside it.
An entry whose steps are fewer than its schedule is reported as not flat whatever its curve says.
"Flat" (< 0.1 dB) is necessary, not sufficient, for convergence: a cosine schedule flattens the
curve by construction as the learning rate goes to zero; only a longer schedule reaching the same
validation figure shows convergence.

    python tools/zoo_curves.py results/zoo/curves
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spinv.zoo import list_models  # noqa: E402


def _read(log: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]:
    steps, losses, val = [], [], []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec and rec["loss"] is not None:
            steps.append(rec["step"])
            losses.append(rec["loss"])
        if rec.get("val_psnr") is not None:
            val.append((rec["step"], rec["val_psnr"]))
    return np.asarray(steps), np.asarray(losses), val


def convergence(val: list[tuple[int, float]], steps_done: int, scheduled: int) -> dict:
    """Validation PSNR change over the last 20 % of the scheduled steps (``None`` without data)."""
    window = [v for s, v in val if s >= 0.8 * scheduled]
    change = window[-1] - window[0] if len(window) >= 2 else None
    return {"steps": steps_done, "scheduled_steps": scheduled,
            "schedule_complete": steps_done >= scheduled,
            "val_psnr_change_last_20pct_db": change,
            "flat_at_end_of_schedule": (steps_done >= scheduled and change is not None
                                        and abs(change) < 0.1)}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for entry in list_models():
        log = entry.path / "log.jsonl"
        if not log.is_file():
            continue
        steps, losses, val = _read(log)
        if len(steps) == 0:
            continue
        prov = entry.provenance
        done, scheduled = int(prov.get("steps", steps[-1])), int(prov.get("scheduled_steps")
                                                                  or steps[-1])
        summary[entry.name] = convergence(val, done, scheduled)
        fig, ax = plt.subplots(1, 2 if val else 1, figsize=(9 if val else 4.5, 3.2), squeeze=False)
        w = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        plot = ax[0, 0].semilogy if (smooth > 0).all() else ax[0, 0].plot  # an ELBO may be < 0
        plot(steps[w - 1:], smooth)
        ax[0, 0].set(xlabel="step", ylabel="training loss", title=entry.name)
        if val:
            s, v = zip(*val, strict=True)
            ax[0, 1].plot(s, v, "o-")
            ax[0, 1].axvline(0.8 * scheduled, ls="--", c="grey")
            ax[0, 1].set(xlabel="step", ylabel="validation PSNR (dB)",
                         title=f"{done}/{scheduled} steps")
        fig.tight_layout()
        fig.savefig(out / f"{entry.name}.png", dpi=80)
        plt.close(fig)
    (out / "convergence.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, s in summary.items():
        print(f"{name}: {s['steps']}/{s['scheduled_steps']} steps, validation change over the "
              f"last 20 %: {s['val_psnr_change_last_20pct_db']}, "
              f"flat: {s['flat_at_end_of_schedule']}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/zoo/curves"))
