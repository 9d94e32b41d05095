"""``spinv train``, ``spinv evaluate`` and ``spinv report`` (thin wrappers of the library)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer


def _train(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/smoke-*.yaml)."),
    out: Path = typer.Option(..., "--out", help="Run directory (checkpoints, log.jsonl)."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Stop at this global step (the LR schedule still uses "
        "train.steps); resume later with --resume."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    seed: int | None = typer.Option(None, "--seed", help="Override train.seed."),
    device: str | None = typer.Option(None, "--device", help="Override train.device."),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override a config value, e.g. --set data.n_train=50 (repeatable)."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: only on a terminal)."),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty --out folder that is not a spinv run."),
) -> None:
    """Train a reconstruction model; launch with torchrun for data-parallel training."""
    from spinv.training.config import apply_overrides, load_config
    from spinv.training.loop import train

    cfg = load_config(config)
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    changes = {}
    if seed is not None:
        changes["seed"] = seed
    if device is not None:
        changes["device"] = device
    if changes:
        cfg = cfg.replace("train", **changes)
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"--max-steps={max_steps}: expected a non-negative integer")
    result = train(cfg, out, max_steps=max_steps, resume=resume, progress=progress,
                   force=force)
    if not result.is_main:  # one summary line per distributed run
        return
    parts = [f"step {result.step}/{cfg.train.steps}"]
    if result.final_loss is not None:
        parts.append(f"loss {result.final_loss:.4g}")
    if result.validation.get("val_psnr") is not None:
        parts.append(f"val PSNR {result.validation['val_psnr']:.2f} dB")
    if result.images_per_s:
        parts.append(f"{result.images_per_s:.1f} images/s")
    typer.echo(f"{out}: " + ", ".join(parts))


def _evaluate(
    run: Path = typer.Argument(..., help="Run directory or checkpoint directory/file."),
    out: Path = typer.Option(..., "--out", help="Output directory (metrics.json, figures)."),
    data: str | None = typer.Option(
        None, "--data", help="ct-head, brain-t1, natural, or a folder/file of images (PNG, "
        "NPY, DICOM, NIfTI, HDF5); default: the training dataset."),
    split: str | None = typer.Option(None, "--split", help="train, val or test (eval.split)."),
    rotate: str | None = typer.Option(
        None, "--rotate", help="none, random or an angle in degrees (eval.rotate)."),
    roi: bool | None = typer.Option(
        None, "--roi/--no-roi", help="Metrics on the region of interest only (eval.roi)."),
    n_images: int | None = typer.Option(None, "--n-images", min=1,
                                        help="Evaluate the first N only."),
    seed: int | None = typer.Option(None, "--seed", help="Noise/rotation seed (eval.seed)."),
    examples: int | None = typer.Option(None, "--examples", min=0, max=1000,
                                        help="Example images to plot."),
) -> None:
    """Evaluate a trained model: per-image and mean ± std PSNR/SSIM, example figures.

    Options left out take their value from the eval section of the run's config.
    """
    from spinv.training.checkpoint import load_model
    from spinv.training.config import parse_rotation
    from spinv.training.evaluate import evaluate_model, save_evaluation

    if rotate is not None:
        parse_rotation(rotate, "--rotate")
    if split is not None and split not in ("train", "val", "test"):
        raise ValueError(f"--split={split!r}: expected train, val or test")
    if n_images is not None and n_images < 1:
        raise ValueError(f"--n-images={n_images}: expected a positive integer")
    model, cfg = load_model(run)
    ev = cfg.eval
    metrics, arrays = evaluate_model(
        model, cfg, cfg.data.dataset if data is None else data,
        split=ev.split if split is None else split,
        rotate=ev.rotate if rotate is None else rotate,
        roi=ev.roi if roi is None else roi,
        n_images=n_images if n_images is not None else ev.n_images,
        seed=ev.seed if seed is None else seed, batch_size=ev.batch_size,
    )
    metrics["checkpoint"] = str(run)
    metrics["config"] = dataclasses.asdict(cfg.problem)
    save_evaluation(out, metrics, arrays, ev.n_examples if examples is None else examples)
    s = metrics["summary"]
    typer.echo(
        f"{metrics['n_images']} images: PSNR {s['psnr']['mean']:.2f} ± {s['psnr']['std']:.2f} dB,"
        f" SSIM {s['ssim']['mean']:.4f} ± {s['ssim']['std']:.4f} (baseline PSNR "
        f"{s['baseline_psnr']['mean']:.2f} dB) -> {out / 'metrics.json'}"
    )


def _report(
    runs: list[Path] = typer.Argument(..., help="Run and/or evaluation directories."),
    out: Path = typer.Option(..., "--out", help="Output directory (report.md, report.html)."),
    examples: int = typer.Option(3, "--examples", min=0, max=1000,
                                 help="Example images per evaluation."),
) -> None:
    """Markdown + HTML report: tables, training curves, violin plots, example images."""
    from spinv.report import make_report

    paths = make_report(runs, out, n_examples=examples)
    typer.echo(json.dumps({k: str(v) if not isinstance(v, list) else [str(p) for p in v]
                           for k, v in paths.items()}))


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and ``report`` to the ``spinv`` app."""
    app.command("train")(_train)
    app.command("evaluate")(_evaluate)
    app.command("report")(_report)
