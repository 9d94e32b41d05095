"""``spinv equivariance``: the experiments of thesis §2.5 (aliases of ``spinv experiment run
equivariance NAME``, :mod:`spinv.experiments.equivariance`).

Each command reads ``CONFIG`` (``configs/equivariance-*.yaml``; section ``--scale``), trains
with a progress bar over the training steps and writes ``results.json``, ``results.md`` and PNG
figures to ``--out``, and one run directory per trained model to ``--out/models/<name>``
(``spinv evaluate`` / ``spinv report`` accept them). ``--resume`` continues the runs of a
killed experiment (finished models are loaded, not retrained).
"""

from __future__ import annotations

from pathlib import Path

import typer

equivariance_app = typer.Typer(
    help="Ordinary vs equivariant learned proximal gradient (thesis §2.5, Figs 2.7-2.12).",
    no_args_is_help=True,
)

_CONFIG = typer.Argument(..., help="YAML config (configs/equivariance-*.yaml).")
_OUT = typer.Option(..., "--out", help="Output directory (results.json, results.md, PNGs).")
_SCALE = typer.Option("small", "--scale", help="Config section: small (CPU) or paper (GPU).")
_SEED = typer.Option(None, "--seed", help="Override the config's seed.")
_QUIET = typer.Option(False, "--quiet", help="No progress bars.")
_RESUME = typer.Option(False, "--resume", help="Continue the model runs in --out/models.")


def _run(name: str, config: Path, out: Path, scale: str, seed: int | None, quiet: bool,
         resume: bool) -> None:
    from spinv.cli.experiment_cmd import dispatch

    overrides = [] if seed is None else [f"seed={seed}"]
    dispatch("equivariance", name, config, out, scale=scale, overrides=overrides, resume=resume,
             quiet=quiet)


@equivariance_app.command("sweep-n")
def sweep_n(config: Path = _CONFIG, out: Path = _OUT, scale: str = _SCALE, seed: int = _SEED,
            quiet: bool = _QUIET, resume: bool = _RESUME) -> None:
    """Training-set-size sweep, ordinary vs C4, upright and rotated tests (Figs 2.8-2.11)."""
    _run("sweep-n", config, out, scale, seed, quiet, resume)


@equivariance_app.command("groups")
def groups(config: Path = _CONFIG, out: Path = _OUT, scale: str = _SCALE, seed: int = _SEED,
           quiet: bool = _QUIET, resume: bool = _RESUME) -> None:
    """Group-order sweep m in {1, 2, 3, 4, 6, 8} at fixed N (Fig. 2.7)."""
    _run("groups", config, out, scale, seed, quiet, resume)


@equivariance_app.command("depth")
def depth(config: Path = _CONFIG, out: Path = _OUT, scale: str = _SCALE, seed: int = _SEED,
          quiet: bool = _QUIET, resume: bool = _RESUME) -> None:
    """Learned iterations run past their trained depth vs TV-PDHG iterates (Fig. 2.12)."""
    _run("depth", config, out, scale, seed, quiet, resume)


def register(app: typer.Typer) -> None:
    """Add the ``equivariance`` sub-app to the ``spinv`` command."""
    app.add_typer(equivariance_app, name="equivariance")
