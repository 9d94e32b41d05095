"""``spinv nonexpansive``: the experiments of thesis ch. 3 (thin wrappers around
:mod:`spinv.experiments.nonexpansive_runs` and :mod:`spinv.experiments.pnp`).

Each command reads ``[CONFIG]`` (``configs/nonexpansive-*.yaml``, the section named like the
command; no config: the defaults of :mod:`spinv.experiments.nonexpansive_config`), shows a
progress bar over the training steps / iterations and writes ``results.json``,
``results.md`` and PNG figures (atomically) to ``--out``; every trained network leaves a run
directory ``--out/runs/<name>`` (``spinv evaluate|lipschitz|report`` accept those of the
denoisers), and the same command with the same ``--out`` resumes a killed run.
"""

from __future__ import annotations

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


def _config(command: str, config: Path | None, seed: int | None) -> dict:
    from spinv.experiments.nonexpansive_config import load_config

    cfg = load_config(config, command)
    if seed is not None:
        if seed < 0:
            raise ValueError(f"--seed {seed}: expected an integer >= 0")
        cfg["seed"] = seed
    return cfg


def _finish(out: Path) -> None:
    typer.echo((out / "results.md").read_text())
    typer.echo(f"wrote {out}")


@nonexpansive_app.command("toy")
def toy(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
        quiet: bool = _QUIET) -> None:
    """Fit |x| from 6 points: nonexpansive vs unconstrained ResNet (Fig. 3.1)."""
    from spinv.experiments.nonexpansive_runs import run_toy

    run_toy(_config("toy", config, seed), out, progress=not quiet)
    _finish(out)


@nonexpansive_app.command("denoise")
def denoise(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
            quiet: bool = _QUIET) -> None:
    """PSNR of TV, DnCNN and nonexpansive Euler/Heun/RK4 denoisers (Fig. 3.2, Table 3.1)."""
    from spinv.experiments.nonexpansive_runs import run_denoise

    run_denoise(_config("denoise", config, seed), out, progress=not quiet)
    _finish(out)


@nonexpansive_app.command("pnp")
def pnp(config: Path = _CONFIG, out: Path = _OUT, seed: int = _SEED,
        denoiser: Path | None = typer.Option(
            None, "--denoiser", help="Run directory of a denoiser trained with `spinv train` "
                                     "(replaces the averaged denoiser trained here)."),
        quiet: bool = _QUIET) -> None:
    """PnP-PGD (Algorithm 6) and PnP-ADMM on held-out CT/MRI slices: averaged vs DnCNN.

    Free parameters (denoiser sigma, relaxation weight, step / penalty, TV alpha) are chosen
    on the validation split; the test slices are reconstructed once. Reports mean PSNR/SSIM,
    certificates and the fixed-point residual curves."""
    from spinv.experiments.pnp import run_pnp

    cfg = _config("pnp", config, seed)
    model = None
    if denoiser is not None:
        from spinv.cli.lipschitz_cmd import load_any_model

        if not denoiser.exists():
            raise FileNotFoundError(f"--denoiser {str(denoiser)!r}: no such run directory")
        model, _ = load_any_model(denoiser)
    run_pnp(cfg, out, progress=not quiet, denoiser=model,
            denoiser_source=None if denoiser is None else str(denoiser))
    _finish(out)


def register(app: typer.Typer) -> None:
    """Add the ``nonexpansive`` sub-app to the ``spinv`` command."""
    app.add_typer(nonexpansive_app, name="nonexpansive")
