"""Shared plumbing of the chapter-1 sweeps: each point is one
:func:`spinv.bilevel.pipeline.run_learning` with some ``base`` keys overridden, written to
``out/<point>/`` (pattern, metrics), counted on the progress protocol; the sweep writes
``out/summary.json`` and a figure or table."""

from __future__ import annotations

from pathlib import Path

from spinv.atomic import atomic_write_json
from spinv.bilevel.config import SamplingConfig
from spinv.bilevel.pipeline import run_learning
from spinv.experiments.protocol import STAGE, Progress

__all__ = ["Points", "table_report", "write_summary"]


class Points:
    """The learning runs of one sweep: ``points.run(name, **overrides)`` learns with
    ``overrides`` applied to ``base`` into ``out/name`` and reports ``progress(k, total,
    {"stage": stage})`` after the ``k``-th run."""

    def __init__(self, base: SamplingConfig, out: Path, total: int,
                 progress: Progress | None = None, stage: str = "learning runs") -> None:
        self.base, self.out, self.total = base, Path(out), total
        self.progress, self.stage, self.done = progress, stage, 0

    def run(self, name: str, **overrides) -> dict:
        """One learning run (module docstring); returns its metrics."""
        cfg = SamplingConfig.from_dict({**self.base.to_dict(), **overrides})
        print(f"--- {name}: {overrides}")
        metrics = run_learning(cfg, self.out / name, log=lambda s: print(f"[{name}] {s}"))
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, {STAGE: self.stage})
        return metrics


def write_summary(out: Path, summary: dict) -> dict:
    """``out/summary.json`` (atomically); returns ``summary``."""
    atomic_write_json(Path(out) / "summary.json", summary)
    return summary


def table_report(results: dict, out: Path) -> str:
    """What a sweep prints after its run: its table, if it has one, and the summary's path."""
    table = results.get("table")
    return (f"{table}\n" if table else "") + f"summary: {Path(out) / 'summary.json'}"
