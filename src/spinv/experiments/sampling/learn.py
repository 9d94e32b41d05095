"""One bilevel learning run of an MRI sampling pattern (thesis Sec. 1.3, ``spinv sampling
learn``): :func:`spinv.bilevel.pipeline.run_learning` on a :class:`.config.SamplingRun` —
learn the pattern and :math:`\\alpha` (L-BFGS-B on the implicit gradient of Eq. (1.2)),
threshold, re-tune, evaluate on held-out slices against baselines at the same rate; writes
``pattern.npy``/``.png``, ``patterns.png`` and ``metrics.json``.

``spinv experiment run sampling learn configs/sampling-smoke.yaml --out DIR``
"""

from __future__ import annotations

from pathlib import Path

from spinv.bilevel.pipeline import run_learning
from spinv.experiments.protocol import STAGE, Progress
from spinv.experiments.sampling.config import SamplingRun

__all__ = ["report", "run"]


def run(cfg: SamplingRun, out: Path, progress: Progress | None = None,
        resume: bool = False) -> dict:
    """The learning run (module docstring), its log lines printed; returns the metrics."""
    metrics = run_learning(cfg, out, log=print)
    if progress is not None:
        progress(1, 1, {STAGE: "learn"})
    return metrics


def report(metrics: dict, out: Path) -> str:
    """One line: rate, alpha, held-out PSNR/SSIM and the time."""
    m = metrics
    return (f"sampling_rate {m['sampling_rate']:.4f}  alpha {m['alpha']:.4g}  "
            f"held-out PSNR {m['psnr']:.2f}  SSIM {m['ssim']:.4f}  ({m['seconds']:.1f}s)")
