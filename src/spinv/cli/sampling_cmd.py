"""``spinv sampling learn|experiment|evaluate``: bilevel learning of MRI sampling patterns
(thesis ch. 1). ``learn`` and ``experiment NAME`` are aliases of ``spinv experiment run sampling
...`` (:mod:`spinv.experiments.sampling`); ``evaluate`` measures a pattern file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

sampling_app = typer.Typer(
    help="Learn k-space sampling patterns by bilevel optimisation (thesis ch. 1); evaluate them.",
    no_args_is_help=True,
)


@sampling_app.command("learn")
def learn_cmd(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/sampling-smoke.yaml"),
    out: Path = typer.Option(Path("runs/sampling"), "--out", help="output directory"),
    seed: int = typer.Option(None, "--seed", min=0, help="override the config's seed"),
    maxiter: int = typer.Option(None, "--maxiter", min=1, max=10**6,
                                help="override L-BFGS-B iterations"),
) -> None:
    """Learn a pattern and alpha; write pattern.npy/.png and metrics.json (with baselines)."""
    from spinv.cli.experiment_cmd import dispatch

    overrides = [f"{key}={value}" for key, value in (("seed", seed), ("maxiter", maxiter))
                 if value is not None]
    dispatch("sampling", "learn", config, out, overrides=overrides, quiet=True)


def check_levels(**values: float | None) -> None:
    """Each given option is a finite number >= 0 (``--alpha``, ``--noise``, ``--eps``,
    ``--gamma``); ``None`` means "not given"."""
    import math

    for name, value in values.items():  # (beyond 1e6 the solves stall: images lie in [0, 1])
        if value is not None and not (math.isfinite(value) and 0 <= value <= 1e6):
            raise ValueError(f"--{name} {value!r}: expected a finite number in [0, 1e6]")


@sampling_app.command("evaluate")
def evaluate_cmd(
    pattern: Path = typer.Argument(..., help="pattern .npy (centred, values in [0, 1]) or "
                                   "the name of a zoo pattern (`spinv models list`)"),
    data: str = typer.Option("brain-t1", "--data", help="bundled dataset name or .npy/.npz"),
    alpha: float = typer.Option(
        None, "--alpha", help="regularisation weight (default: the zoo pattern's, or "
        "metrics.json next to PATTERN, else tuned on --n-train training slices)"
    ),
    regulariser: str = typer.Option("tv", "--regulariser", help="tv | wavelet | h1 | none"),
    noise: float = typer.Option(0.02, "--noise"),
    eps: float = typer.Option(0.01, "--eps"),
    gamma: float = typer.Option(0.01, "--gamma"),
    n_train: int = typer.Option(7, "--n-train", help="slices used to tune alpha if needed"),
    seed: int = typer.Option(0, "--seed", help="noise seed"),
    out: Path = typer.Option(None, "--out", help="write evaluation.json here"),
) -> None:
    """Held-out PSNR/SSIM of a pattern (images resized to the pattern's size).

    With a bundled dataset the held-out slices are its val + test splits; with a file, all
    images (or, when alpha must be tuned, those after the first --n-train).
    """
    import torch

    from spinv.atomic import atomic_write_json
    from spinv.bilevel.data import make_lower_level, resize, training_and_test
    from spinv.bilevel.learn import evaluate_pattern, tune_alpha
    from spinv.bilevel.lower_level import make_regulariser
    from spinv.zoo.patterns import resolve_pattern

    check_levels(alpha=alpha, noise=noise, eps=eps, gamma=gamma)
    pattern, zoo_alpha = resolve_pattern(pattern)
    if alpha is None and zoo_alpha is not None:
        alpha = zoo_alpha
        typer.echo(f"alpha {alpha:.4g} learned with the zoo pattern ({pattern.parent.name})")
    if not pattern.exists():
        raise FileNotFoundError(f"pattern {str(pattern)!r}: no such file")
    from spinv.data.npy import read_npy

    mask = torch.as_tensor(read_npy(pattern, "pattern", kinds="biuf"), dtype=torch.float64)
    if not bool(torch.isfinite(mask).all()):
        raise ValueError(f"pattern {str(pattern)!r}: contains NaN or infinite values")
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.numel() == 0:
        raise ValueError(f"pattern {str(pattern)!r} has shape {tuple(mask.shape)}: expected a "
                         "non-empty square (H, W) array")
    if bool((mask < 0).any()) or bool((mask > 1).any()):
        raise ValueError(f"pattern {str(pattern)!r}: expected values in [0, 1]")
    if not bool((mask > 0).any()):  # nothing sampled: every reconstruction would be zero
        raise ValueError(f"pattern {str(pattern)!r}: every weight is 0, so nothing is measured")
    size = int(mask.shape[0])
    reg = make_regulariser(regulariser, gamma=gamma)
    if Path(data).suffix in (".npy", ".npz"):
        from spinv.bilevel.data import load_images

        test = resize(load_images(data), size)
        train = test[: min(n_train, len(test))]
        if alpha is None and len(test) > len(train):
            test = test[len(train):]  # tune alpha on the first slices, evaluate on the others
    else:
        train, test = training_and_test(data, size, n_train)
    if alpha is None:
        meta = pattern.parent / "metrics.json"
        if meta.exists() and pattern.name == "pattern.npy":
            alpha = float(json.loads(meta.read_text())["alpha"])
            typer.echo(f"alpha {alpha:.4g} from {meta}")
        else:
            ll = make_lower_level(train, reg, noise=noise, eps=eps, seed=seed)
            alpha = tune_alpha(ll, mask).alpha
            typer.echo(f"alpha {alpha:.4g} tuned on {len(train)} training slices")
    lt = make_lower_level(test, reg, noise=noise, eps=eps, seed=seed + 1)
    m = evaluate_pattern(lt, mask, alpha)
    m["alpha"] = alpha
    typer.echo(
        f"{m['n_images']} images  rate {m['sampling_rate']:.4f}  PSNR {m['psnr']:.2f} "
        f"± {m['psnr_std']:.2f}  SSIM {m['ssim']:.4f} ± {m['ssim_std']:.4f}"
    )
    if out is not None:
        atomic_write_json(Path(out) / "evaluation.json", m)


@sampling_app.command("experiment")
def experiment_cmd(
    name: str = typer.Argument(..., help="beta-sweep (Fig. 1.5) | regularisers (Table 1.1) | "
                               "training-size (Fig. 1.11) | lines (Tables 1.3-1.4) | density "
                               "(Figs. 1.6, 1.8)"),
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/sampling-beta-sweep.yaml"),
    out: Path = typer.Option(..., "--out", help="output directory"),
) -> None:
    """Run one chapter-1 experiment: a learning run per point, summary.json and a figure/table
    (an alias of ``spinv experiment run sampling NAME``)."""
    from spinv.cli.experiment_cmd import dispatch

    dispatch("sampling", name, config, out)


def register(app: typer.Typer) -> None:
    """Add the ``sampling`` sub-app to the ``spinv`` command."""
    app.add_typer(sampling_app, name="sampling")
