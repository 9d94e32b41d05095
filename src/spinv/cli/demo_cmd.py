"""``spinv demo``: the headline comparison on bundled data (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="output folder (report, figures)"),
    n_train: int = typer.Option(10, "--n-train", help="training slices (thesis: N)"),
    steps: int = typer.Option(1000, "--steps", help="Adam steps per learned model"),
    image_size: int = typer.Option(64, "--image-size", help="image side in pixels"),
    n_test: int = typer.Option(14, "--n-test", help="held-out slices (at most 14)"),
    width: int = typer.Option(96, "--width", help="|H| x channels of the learned proxes"),
    iterations: int = typer.Option(8, "--iterations", help="unrolled iterations"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of data, noise, rotations, weights"),
    bf16: bool = typer.Option(False, "--bf16/--fp32", help="bfloat16 autocast for the networks "
                              "(default float32: the same numbers on every CPU)"),
    retrain: bool = typer.Option(False, "--retrain", help="train the ordinary and C4 LPG "
                                 "models live (minutes) instead of evaluating the shipped ones"),
    threads: int = typer.Option(None, "--threads", help="torch threads (default: 1 with "
                                "--retrain, so that two runs print identical tables; else the "
                                "idle cores, from the load average)"),
    resume: bool = typer.Option(False, "--resume", help="continue the model runs in "
                                "--out/models after an interruption"),
) -> None:
    """Headline comparison on low-dose head CT: learned reconstruction vs FBP and TV.

    By default evaluates the shipped, fully trained models (`spinv models list`) against FBP
    and TV on upright and rotated held-out slices and writes a report. --retrain instead trains
    an ordinary and a C4-equivariant learned proximal gradient method (thesis Algorithm 5) on
    --n-train slices live (the small-data comparison of §2.5.3; runs in --out/models).
    """
    import torch

    from spinv.cli.experiment_cmd import StageBars
    from spinv.experiments.demo import DemoSettings, format_table, run_demo

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    # The thread count changes float32 summation order (last digits of the trained weights):
    # a fixed default makes `--retrain --seed S` bit-identical from run to run on one machine.
    default = 1 if retrain else idle_threads()
    torch.set_num_threads(threads if threads is not None else default)
    for name, value in (("--n-train", n_train), ("--steps", steps), ("--n-test", n_test),
                        ("--iterations", iterations), ("--width", width)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 16 <= image_size <= 512:
        raise ValueError(f"--image-size must lie in [16, 512], got {image_size}")
    from spinv.experiments.protocol import writable_folder

    out = writable_folder(out)  # an unusable --out is found now, not after the whole demo
    shipped = () if retrain else shipped_models(image_size)
    what = (f"{n_train} training slices, {steps} steps per model" if retrain
            else f"shipped models {', '.join(shipped)}")
    typer.echo(f"spinv demo: ct-head, {image_size}² pixels, {what}, "
               f"{'bf16' if bf16 else 'float32'}, {torch.get_num_threads()} thread(s) -> {out}")
    settings = DemoSettings(n_train=n_train, steps=steps, image_size=image_size, n_test=n_test,
                            width=width, iterations=iterations, seed=seed, bf16=bf16,
                            shipped=shipped)
    bars = StageBars(enabled=True)
    try:
        results = run_demo(out, settings, bars, resume=resume)
    finally:
        bars.close()
    typer.echo("")
    typer.echo(format_table(results))
    typer.echo(f"report: {out / 'report.md'} (also report.html, examples.png, psnr_violin.png)")
    typer.echo(f"wall time {results['wall_time_s']:.0f} s")


SHIPPED = ("ct64-lpg-c4", "ct64-lpd-c4", "ct64-lpd-c4-aug")


def shipped_models(image_size: int) -> tuple[str, ...]:
    """The zoo models the demo evaluates; an error with the way out when they are missing."""
    from spinv.zoo import list_models

    names = {e.name for e in list_models()}
    missing = [n for n in SHIPPED if n not in names]
    if missing:
        raise ValueError(f"the shipped models {', '.join(missing)} are not installed (`spinv "
                         "models list`); run `spinv demo --retrain` to train models live")
    if image_size != 64:
        raise ValueError(f"--image-size {image_size}: the shipped models are trained for 64x64; "
                         "use --retrain for another size")
    return SHIPPED


def idle_threads() -> int:
    """Torch threads for the cores that are idle now: ``cores - round(load average)``, at least 1.

    An OpenMP pool larger than the free cores makes every barrier wait for a descheduled thread;
    on a busy 2-core machine that made training steps 10-40x slower than with one thread.
    """
    import os

    import torch

    cores = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return cores
    return max(1, min(cores, cores - round(load)))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
