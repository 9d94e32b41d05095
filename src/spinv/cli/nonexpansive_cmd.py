"""``spinv nonexpansive``: the experiments of thesis ch. 3 (aliases of ``spinv experiment run
nonexpansive NAME``, :mod:`spinv.experiments.nonexpansive`).

Each command reads ``[CONFIG]`` (``configs/nonexpansive-*.yaml``, the section named like the
command; no config: the defaults of :mod:`spinv.experiments.nonexpansive.config`), shows a
progress bar per training / PnP stage and writes ``results.json``, ``results.md`` and PNG
figures (atomically) to ``--out``; every trained network leaves a run directory
``--out/runs/<name>`` (``spinv evaluate|lipschitz|report`` accept those of the denoisers), and
the same command with the same ``--out`` resumes a killed run.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

nonexpansive_app = typer.Typer(
    help="Nonexpansive and averaged ResNets (thesis ch. 3): toy |x| fit, denoising, PnP.",
    no_args_is_help=True,
)

_CONFIG = typer.Argument(None, help="YAML config (configs/nonexpansive-*.yaml); default: "
                                    "built-in defaults.")
_OUT = typer.Option(..., "--out", help="Output directory (results.json, results.md, PNGs, "
                                        "runs/; an existing one resumes).")
_SEED = typer.Option(None, "--seed", help="Override the config's seed.")
_QUIET = typer.Option(False, "--quiet", help="No progress bars.")


def _run(name: str, config: Path | None, out: Path, quiet: bool, overrides: list[str]) -> None:
    from spinv.cli.experiment_cmd import dispatch

    dispatch("nonexpansive", name, {} if config is None else config, out, overrides=overrides,
             quiet=quiet)


def _seed(seed: int | None) -> list[str]:
    return [] if seed is None else [f"seed={seed}"]


@nonexpansive_app.command("toy")
def toy(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
        quiet: bool = _QUIET) -> None:
    """Fit |x| from 6 points: nonexpansive vs unconstrained ResNet (Fig. 3.1)."""
    _run("toy", config, out, quiet, _seed(seed))


@nonexpansive_app.command("denoise")
def denoise(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
            quiet: bool = _QUIET) -> None:
    """PSNR of TV, DnCNN and nonexpansive Euler/Heun/RK4 denoisers (Fig. 3.2, Table 3.1)."""
    _run("denoise", config, out, quiet, _seed(seed))


@nonexpansive_app.command("pnp")
def pnp(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
        denoiser: Path | None = typer.Option(
            None, "--denoiser", help="Run directory of a denoiser trained with `spinv train` "
                                     "or a zoo name (replaces the averaged denoiser trained "
                                     "here)."),
        quiet: bool = _QUIET) -> None:
    """PnP-PGD (Algorithm 6) and PnP-ADMM on held-out CT/MRI slices: averaged vs DnCNN.

    Free parameters (denoiser sigma, relaxation weight, step / penalty, TV alpha) are chosen
    on the validation split; the test slices are reconstructed once. Reports mean PSNR/SSIM,
    certificates and the fixed-point residual curves."""
    given = [] if denoiser is None else [f"denoiser={json.dumps(str(denoiser))}"]
    _run("pnp", config, out, quiet, _seed(seed) + given)


def register(app: typer.Typer) -> None:
    """Add the ``nonexpansive`` sub-app to the ``spinv`` command."""
    app.add_typer(nonexpansive_app, name="nonexpansive")
