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
    seed: int = typer.Option(0, "--seed", help="seed of data, noise, rotations, weights"),
    bf16: bool = typer.Option(None, "--bf16/--fp32", help="bfloat16 autocast for the networks "
                              "(default: when the CPU/GPU supports it)"),
    threads: int = typer.Option(None, "--threads", help="torch threads (default: the idle "
                                "cores, from the load average)"),
    resume: bool = typer.Option(False, "--resume", help="continue the model runs in "
                                "--out/models after an interruption"),
) -> None:
    """Headline comparison: ordinary vs C4-equivariant learned reconstruction on head CT.

    Trains both learned proximal gradient methods (thesis Algorithm 5) on low-dose head CT and
    compares them with FBP and TV on upright and rotated held-out slices; writes a report and
    the two model runs (--out/models/ordinary, --out/models/C4).
    """
    import torch

    from spinv.cli.experiment_cmd import StageBars
    from spinv.experiments.demo import DemoSettings, format_table, run_demo

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads if threads is not None else idle_threads())
    for name, value in (("--n-train", n_train), ("--steps", steps), ("--n-test", n_test),
                        ("--iterations", iterations), ("--width", width)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if image_size < 16:
        raise ValueError(f"--image-size must be >= 16, got {image_size}")
    typer.echo(f"spinv demo: ct-head, {n_train} training slices, {image_size}² pixels, "
               f"{steps} steps per model, {torch.get_num_threads()} thread(s) -> {out}")
    settings = DemoSettings(n_train=n_train, steps=steps, image_size=image_size, n_test=n_test,
                            width=width, iterations=iterations, seed=seed, bf16=bf16)
    bars = StageBars(enabled=True)
    try:
        results = run_demo(out, settings, bars, resume=resume)
    finally:
        bars.close()
    typer.echo("")
    typer.echo(format_table(results))
    typer.echo(f"report: {out / 'report.md'} (also report.html, examples.png, psnr_violin.png)")
    typer.echo(f"wall time {results['wall_time_s']:.0f} s")


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
