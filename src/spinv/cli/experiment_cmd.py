"""``spinv experiment list|run``: every experiment of the catalogue behind one command.

``spinv experiment run CHAPTER NAME CONFIG --out OUT [--scale small|paper] [--set k=v ...]
[--resume] [--quiet]`` loads the config with the experiment's typed schema, runs it with a
progress bar per stage and prints its report. The chapter commands (``spinv equivariance
sweep-n``, ``spinv sampling learn``, ...) are aliases of :func:`dispatch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

experiment_app = typer.Typer(
    help="The thesis' experiments behind one protocol: list them, run one.",
    no_args_is_help=True,
)


class StageBars:
    """The progress protocol ``progress(step, total, scalars)`` rendered with tqdm: one bar per
    stage (``scalars["stage"]``), replaced when the stage changes or the count restarts."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = enabled
        self.bar = None
        self.key: tuple[Any, int] | None = None
        self.last = 0

    def __call__(self, step: int, total: int, scalars: Mapping[str, Any]) -> None:
        from spinv.experiments.protocol import STAGE
        from spinv.training.logging import ProgressBar

        key = (scalars.get(STAGE), total)
        if self.bar is None or key != self.key or step < self.last:
            self.close()
            self.bar = ProgressBar(total, enabled=self.enabled, desc=str(key[0] or "run"),
                                   leave=False)
            self.key = key
        self.last = step
        self.bar(step, total, scalars)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def dispatch(chapter: str, name: str, config: Path, out: Path, *, scale: str | None = None,
             overrides: Sequence[str] = (), resume: bool = False, quiet: bool = False) -> dict:
    """Load ``config`` for the experiment ``chapter``/``name``, run it into ``out`` (progress
    bars unless ``quiet``), print its report and ``wrote OUT``; returns its results."""
    from spinv.experiments.protocol import find

    experiment = find(chapter, name)
    cfg = experiment.load(config, scale, overrides)
    bars = None if quiet else StageBars()
    try:
        results = experiment(cfg, out, bars, resume=resume)
    finally:
        if bars is not None:
            bars.close()
    if experiment.report is not None:
        typer.echo(experiment.report(results, out).rstrip("\n"))
    typer.echo(f"wrote {out}")
    return results


@experiment_app.command("list")
def list_cmd() -> None:
    """Every experiment: chapter, name and what it measures."""
    from spinv.experiments.protocol import catalogue

    for chapter, experiments in catalogue().items():
        for name, e in experiments.items():
            typer.echo(f"{chapter:14s} {name:14s} {e.summary}")


@experiment_app.command("run")
def run_cmd(
    chapter: str = typer.Argument(..., help="chapter package (spinv experiment list)"),
    name: str = typer.Argument(..., help="experiment of the chapter"),
    config: Path = typer.Argument(..., help="YAML config (configs/<chapter>-*.yaml)"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    scale: str = typer.Option(None, "--scale", help="config section: small or paper "
                              "(default: small when the file has sections)"),
    overrides: list[str] = typer.Option(None, "--set", help="override: key.path=value "
                                        "(repeatable; keys of the section read)"),
    resume: bool = typer.Option(False, "--resume", help="continue the model runs in --out"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Run one experiment of the catalogue."""
    dispatch(chapter, name, config, out, scale=scale, overrides=overrides or (), resume=resume,
             quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` sub-app to the ``spinv`` command."""
    app.add_typer(experiment_app, name="experiment")
