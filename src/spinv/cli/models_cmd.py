"""``spinv models``: list, show, verify, retrain and release the shipped pretrained models."""

from __future__ import annotations

import json
from pathlib import Path

import typer

models_app = typer.Typer(help="Pretrained models shipped with spinv (no download).",
                         no_args_is_help=True)


@models_app.command("list")
def list_cmd() -> None:
    """One line per shipped model: problem, training budget, held-out PSNR at release."""
    from spinv.zoo import list_models

    entries = list_models()
    if not entries:
        typer.echo("no models shipped in this installation")
    for entry in entries:
        typer.echo(entry.summary())


@models_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Model name (see `spinv models list`).")
             ) -> None:
    """The full provenance of one model (JSON)."""
    from spinv.zoo import get_model

    entry = get_model(name)
    typer.echo(json.dumps(entry.provenance, indent=2))
    typer.echo(f"pattern: {entry.path / 'pattern.npy'}" if entry.kind == "sampling-pattern"
               else f"weights: {entry.checkpoint}")


@models_app.command("verify")
def verify_cmd(names: list[str] = typer.Argument(
        None, help="Model names (default: every shipped model).")) -> None:
    """Re-measure held-out PSNR/SSIM and compare with the figures recorded at release."""
    from spinv.zoo import TOLERANCE, list_models, verify

    names = list(names or [e.name for e in list_models()])
    failed = []
    for name in names:
        for row in verify(name):
            status = "ok" if row["ok"] else "DIFFERS"
            typer.echo(f"{name}: {row['metric']:14s} released {row['released']:.4f} "
                       f"measured {row['measured']:.4f} ({row['difference']:+.4f}) {status}")
            if not row["ok"]:
                failed.append(f"{name}.{row['metric']}")
    if failed:
        raise ValueError(f"{len(failed)} figure(s) differ from release beyond the tolerance "
                         f"{TOLERANCE}: {', '.join(failed)}")


@models_app.command("train")
def train_cmd(
    name: str = typer.Argument(..., help="Model name whose recorded config is retrained."),
    out: Path = typer.Option(..., "--out", help="New run directory."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop early at this step."),
) -> None:
    """Retrain a shipped model from its recorded config (same seed, data and schedule)."""
    from spinv.training import parse_config, train
    from spinv.zoo import get_model

    entry = get_model(name)
    if entry.kind == "sampling-pattern":  # bilevel learning (no steps): `spinv sampling learn`
        from spinv.zoo.patterns import retrain

        typer.echo(retrain(entry, out))
        return
    if entry.provenance["config"]["model"]["name"] == "gaussian-vae":  # its two ELBO stages
        from spinv.generative.zoo_vae import retrain as retrain_vae

        typer.echo(retrain_vae(entry, out))
        return
    cfg = parse_config(entry.provenance["config"])
    result = train(cfg, out, max_steps=max_steps, progress=None)
    typer.echo(f"{out}: step {result.step}/{cfg.train.steps}")


@models_app.command("release", hidden=True)
def release_cmd(
    run: Path = typer.Argument(..., help="Finished training run directory."),
    name: str = typer.Option(..., "--name", help="Zoo name."),
    description: str = typer.Option(..., "--description", help="One-line description."),
    force: bool = typer.Option(False, "--force", help="Replace an existing entry."),
    cpu_seconds: float = typer.Option(None, "--cpu-seconds", help="Training CPU time, when the "
                                      "run's own records do not hold all of it."),
) -> None:
    """(Maintainers) Package a training run as a zoo entry, measuring its held-out metrics."""
    from spinv.zoo import release

    entry = release(run, name, description, force=force, cpu_seconds=cpu_seconds)
    typer.echo(entry.summary())


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
