"""``spinv lipschitz CHECKPOINT``: certified Lipschitz bound vs. adversarial estimates.

Loads a checkpoint written by :mod:`spinv.training.checkpoint` (safetensors weights +
``meta.json`` whose ``config.model`` names a catalogued model and its options) of a denoiser
(a run whose problem kind is ``denoise``, or a checkpoint with only a model section), prints the
model's certified bound (:meth:`~spinv.nn.nonexpansive.NonexpansiveDenoiser.certified_lipschitz`
or a product-of-norms bound) and empirical lower estimates (Jacobian power iteration with
jvp/vjp, gradient ascent on :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` from many starts, random pairs),
see :func:`spinv.nn.lipschitz.lipschitz_report`; ``--out DIR`` also writes
``DIR/lipschitz.json``.
"""

from __future__ import annotations

from pathlib import Path

import typer


def load_any_model(path: Path):
    """``(model, config dict)`` from a run or checkpoint directory.

    Uses :func:`spinv.training.checkpoint.load_model`; if the stored experiment config does not
    validate (e.g. a checkpoint saved by a library function with only a ``model`` section),
    rebuilds the model from ``config.model`` alone (``operator=None``, fine for denoisers).
    """
    from spinv.training.checkpoint import load_model, read_checkpoint
    from spinv.training.registry import build_model

    try:
        model, cfg = load_model(path)
        return model, cfg.to_dict()
    except ValueError as first:
        ck = read_checkpoint(path)
        config = ck.metadata.get("config") or {}
        options = dict(config.get("model") or {}) if isinstance(config, dict) else {}
        name = options.pop("name", None)
        if not name:
            raise ValueError(f"checkpoint {str(path)!r}: no model name in its config "
                             f"({first})") from None
        model = build_model(name, options, None)
        try:
            model.load_state_dict(ck.model_state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"checkpoint {str(path)!r} does not match model {name!r}: "
                             f"{err}") from None
        model.eval()
        return model, config


def _lipschitz(
    checkpoint: Path = typer.Argument(..., help="Run directory or checkpoint directory/file."),
    size: int = typer.Option(32, "--size", min=8, max=4096,
                             help="Image size H = W of the test inputs."),
    channels: int | None = typer.Option(
        None, "--channels", min=1, max=256,
        help="Input channels (default: the model's in_channels, else 1)."),
    batch: int = typer.Option(4, "--batch", min=1, max=4096,
                              help="Batch size of the random-pair test."),
    starts: int = typer.Option(8, "--starts", min=1, max=10**5,
                               help="Random starts of the adversarial search."),
    steps: int = typer.Option(50, "--steps", min=0, max=10**6,
                              help="Gradient-ascent steps per start."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**63 - 1,
                             help="Seed of all random inputs."),
    out: Path | None = typer.Option(None, "--out", help="Directory for lipschitz.json."),
) -> None:
    """Report the certified Lipschitz bound of a trained model and adversarial estimates."""
    from spinv.atomic import atomic_write_json
    from spinv.nn.lipschitz import lipschitz_report

    for name, v, lo in (("--size", size, 1), ("--batch", batch, 1), ("--starts", starts, 1),
                        ("--steps", steps, 0)):
        if v < lo:
            raise ValueError(f"{name}={v}: expected an integer >= {lo}")
    model, config = load_any_model(checkpoint)
    kind = ((config.get("problem") or {}).get("kind") if isinstance(config, dict) else None)
    if kind not in (None, "denoise"):
        raise ValueError(
            f"spinv lipschitz {str(checkpoint)!r}: the model maps {kind} measurements to images; "
            "the Lipschitz report is for denoisers (image to image, problem kind 'denoise'); "
            "use spinv evaluate for reconstruction models"
        )
    if channels is None:
        channels = int(getattr(model, "config", {}).get("in_channels", 0) or (
            (config.get("model") or {}).get("in_channels", 1) if isinstance(config, dict) else 1))
    report = lipschitz_report(model, (batch, channels, size, size), starts=starts, steps=steps,
                              seed=seed)
    report["checkpoint"] = str(checkpoint)
    cert = report["certified"]
    typer.echo(f"certified Lipschitz bound : "
               f"{'none' if cert is None else f'{cert:.6g}'} ({report['certificate_source']})")
    if report["certified_averagedness"] is not None:
        typer.echo(f"certified averaged        : alpha = {report['certified_averagedness']:.6g}")
    typer.echo(f"Jacobian power iteration  : {report['jacobian_power']:.6g}")
    typer.echo(f"adversarial ascent        : {report['adversarial']:.6g} "
               f"({starts} starts x {steps} steps)")
    typer.echo(f"random pairs              : {report['random_pairs']:.6g}")
    if report["holds"] is not None:
        typer.echo(f"bound holds on all samples: {'yes' if report['holds'] else 'NO'}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "lipschitz.json", report)
        typer.echo(f"wrote {out / 'lipschitz.json'}")
    if report["holds"] is False:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``lipschitz`` to the ``spinv`` app."""
    app.command("lipschitz")(_lipschitz)
