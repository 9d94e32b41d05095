"""``spinv generative``: train VAE priors, reconstruct MRI with generative regularisers, and run
the comparison experiment of talk 002 (thin wrappers around :mod:`spinv.generative` and
:mod:`spinv.experiments.generative`; ``experiment`` is an alias of ``spinv experiment run
generative comparison``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

generative_app = typer.Typer(
    help="Generative regularisers for MRI (VAE mean/covariance priors, Duff et al.; Bora et al.).",
    no_args_is_help=True,
)


@generative_app.command("train")
def train(
    config: Path = typer.Argument(..., help="YAML config (sections data, model, train, seed)."),
    out: Path = typer.Option(..., "--out", help="Directory for the vae-<kind>/ run directories "
                                                "(an existing one is resumed)."),
    seed: int = typer.Option(None, "--seed", help="Override the config's seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train the mean VAE and one covariance head per kind in model.covariances."""
    import torch

    from spinv.data import load_dataset
    from spinv.experiments.generative import COMPARISON
    from spinv.experiments.generative.experiment import vae_settings
    from spinv.experiments.nonexpansive.config import resolve_device
    from spinv.training.vae import train_generative_models

    cfg = COMPARISON.load(config, None, [] if seed is None else [f"seed={seed}"])
    torch.set_num_threads(int(cfg.num_threads))
    spec, ms, cs = vae_settings(cfg)
    models = train_generative_models(load_dataset(cfg.data.dataset, "train"), out, spec, ms, cs,
                                     zoom=cfg.data.zoom, flip=cfg.data.flip,
                                     device=resolve_device(cfg.device), progress=not quiet)
    for kind in models:
        typer.echo(f"{kind}: {out / f'vae-{kind}'}")


def _check_reconstruct_options(**o) -> None:
    """Every option of ``generative reconstruct`` checked before the models are read, each
    error naming its option."""
    from spinv.data.datasets import list_datasets
    from spinv.operators.sampling import PATTERNS

    choices = {"regulariser": ("mean", "covariance", "range"),
               "covariance": ("identity", "diagonal", "lowrank", "precision"),
               "method": ("alternating", "joint"), "pattern": tuple(PATTERNS),
               "dataset": tuple(list_datasets())}
    for name, allowed in choices.items():
        if o[name] not in allowed:
            raise ValueError(f"--{name} {o[name]!r}: expected one of {', '.join(allowed)}")
    ranges = {"lam": (0, 1e6, "in [0, 1e6]"), "rate": (0, 1, "in (0, 1]"),
              "noise": (0, 1e6, "in (0, 1e6]"),
              "iterations": (1, None, ">= 1"), "n_images": (1, None, ">= 1"),
              "seed": (0, None, ">= 0")}
    for name, (lo, hi, text) in ranges.items():
        v = o[name]
        bad = v < lo or (v == lo and text.startswith(("> ", "in ("))) or (hi is not None and v > hi)
        if bad:
            raise ValueError(f"--{name.replace('_', '-')} {v}: expected a number {text}")


@generative_app.command("reconstruct")
def reconstruct(
    models: Path = typer.Option(..., "--models", help="Directory written by `generative train`."),
    out: Path = typer.Option(..., "--out", help="Output directory (recon.npz, metrics.json)."),
    regulariser: str = typer.Option("covariance", help="mean | covariance | range."),
    covariance: str = typer.Option("precision", help="identity | diagonal | lowrank | precision."),
    lam: float = typer.Option(1.0, "--lam", help="Regularisation weight lambda."),
    rate: float = typer.Option(0.25, help="Sampling rate in (0, 1]."),
    noise: float = typer.Option(0.01, help="Complex noise level sigma (> 0)."),
    pattern: str = typer.Option("variable-density",
                                help="Sampling pattern (spinv.operators.sampling)."),
    method: str = typer.Option("alternating", help="alternating | joint."),
    iterations: int = typer.Option(20, help="Outer iterations."),
    n_images: int = typer.Option(4, "--n-images", help="Test slices of the dataset to use."),
    dataset: str = typer.Option("brain-t1", help="Dataset name (test split)."),
    seed: int = typer.Option(0, "--seed", help="Seed of mask, noise and latent inits."),
) -> None:
    """Simulate MRI data on test slices and reconstruct with a generative regulariser."""
    import numpy as np

    from spinv.atomic import atomic_write_bytes, atomic_write_json
    from spinv.data import load_dataset
    from spinv.experiments.generative.methods import make_problem
    from spinv.experiments.generative.report import metrics
    from spinv.generative import GenerativeOptions, make_regulariser, reconstruct_generative
    from spinv.generative.train import prepare_slices
    from spinv.training.vae import load_vae

    _check_reconstruct_options(regulariser=regulariser, covariance=covariance, lam=lam,
                               rate=rate, noise=noise, pattern=pattern, method=method,
                               iterations=iterations, n_images=n_images, dataset=dataset,
                               seed=seed)
    kind = "identity" if regulariser in ("mean", "range") else covariance
    model = load_vae(models / f"vae-{kind}")
    for p in model.parameters():
        p.requires_grad_(False)
    x = prepare_slices(load_dataset(dataset, "test")[:n_images], model.image_size)
    problem, y = make_problem(x, rate, noise, pattern, seed, seed + 1)
    reg = make_regulariser(regulariser, model)
    options = GenerativeOptions(method=method, iterations=iterations, seed=seed)
    res = reconstruct_generative(problem.operator, y, reg, lam=lam, noise_std=noise,
                                 options=options)
    zf = problem.analytic(y).real
    p, s = metrics(res.u, x)
    p0, s0 = metrics(zf, x)
    out.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    np.savez(buf, reconstruction=res.u[:, 0].cpu().numpy(), zero_filled=zf[:, 0].cpu().numpy(),
             truth=x[:, 0].numpy(), mask=problem.operator.mask.cpu().numpy())
    atomic_write_bytes(out / "recon.npz", buf.getvalue())
    summary = {"regulariser": regulariser, "covariance": kind, "lam": lam, "rate": rate,
               "noise": noise, "psnr": p, "ssim": s, "psnr_zero_filled": p0,
               "ssim_zero_filled": s0}
    atomic_write_json(out / "metrics.json", summary)
    typer.echo(f"PSNR {np.mean(p):.2f} dB (zero-filled {np.mean(p0):.2f}), "
               f"SSIM {np.mean(s):.3f} (zero-filled {np.mean(s0):.3f}) -> {out}")


@generative_app.command("experiment")
def experiment(
    out: Path = typer.Option(..., "--out", help="Output directory (tables, figures, models)."),
    config: Path = typer.Option(
        None, "--config", help="YAML config (default: configs/generative-small.yaml values)."
    ),
    models: Path = typer.Option(None, "--models", help="Reuse VAEs from `generative train`."),
    seed: int = typer.Option(None, "--seed", help="Override the config's seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
) -> None:
    """TV, range, mean-only, covariance models and end-to-end CNN at several rates/noises."""
    from spinv.cli.experiment_cmd import dispatch

    overrides = [] if seed is None else [f"seed={seed}"]
    if models is not None:
        overrides.append(f"models={json.dumps(str(models))}")
    dispatch("generative", "comparison", {} if config is None else config, out,
             overrides=overrides, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the ``generative`` sub-app to the ``spinv`` command."""
    app.add_typer(generative_app, name="generative")
