"""``spinv reconstruct``: simulate measurements of a ground truth, reconstruct, print PSNR/SSIM."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from spinv.cli._common import (
    ANGLES,
    INPUT,
    MASK,
    MU,
    NOISE,
    PHOTONS,
    PROBLEM,
    RATE,
    SEED,
    SIZE,
    SLICE,
    build_problem,
    read_ground_truth,
    save_array_image,
)

ANALYTIC = ("fbp", "zero-filled")
VARIATIONAL = ("tv", "tv-smooth", "tgv", "wavelet", "h1", "dtv")
TUNING_DATA = {"ct": "ct-head", "mri": "brain-t1", "denoise": "natural"}


def _tune_alpha(problem, x: torch.Tensor, method: str, iterations: int, seed: int) -> float:
    """α maximising mean PSNR on 4 bundled training images of the problem's modality."""
    import numpy as np

    from spinv.data import load_dataset
    from spinv.variational.reconstruct import tune_alpha

    name = TUNING_DATA[problem.kind]
    pool = load_dataset(name, "train")
    train = torch.from_numpy(pool[:: max(1, len(pool) // 4)][:4])
    train = torch.nn.functional.interpolate(
        train[:, None], size=tuple(x.shape[-2:]), mode="bilinear", antialias=True,
        align_corners=False,
    ).clamp(0, 1)
    typer.echo(f"tuning alpha on {train.shape[0]} '{name}' training images ...", err=True)

    def simulate(images):
        return problem.operator, problem.simulate(images, seed=seed + 1)

    alpha, hist = tune_alpha(simulate, train, method, grid=list(np.logspace(-4, 0, 5)),
                             golden_iterations=4, iterations=iterations, return_history=True)
    return float(alpha)


def reconstruct(
    problem: str = PROBLEM,
    input: str = INPUT,
    method: str = typer.Option(..., "--method", help="fbp | zero-filled | tv | tv-smooth | tgv | "
                               "wavelet | h1 | dtv"),
    out: Path = typer.Option(..., "--out", help="reconstruction .npy or .png"),
    alpha: str = typer.Option("auto", "--alpha", help="regularisation weight, or 'auto' (1-D "
                              "search maximising PSNR on bundled training images)"),
    reference: str = typer.Option(None, "--reference", help="dtv: reference image file"),
    iterations: int = typer.Option(300, "--iterations", help="solver iterations"),
    slice_index: int = SLICE,
    size: int = SIZE,
    angles: int = ANGLES,
    photons: float = PHOTONS,
    mu: float = MU,
    mask: str = MASK,
    rate: float = RATE,
    noise: float = NOISE,
    seed: int = SEED,
) -> None:
    """Simulate measurements of --input, reconstruct with --method, print PSNR/SSIM, save --out."""
    from spinv.metrics import psnr, ssim

    if method not in ANALYTIC + VARIATIONAL:
        raise ValueError(
            f"--method {method!r}: expected one of {', '.join(ANALYTIC + VARIATIONAL)}"
        )
    if out.suffix not in (".npy", ".png"):
        raise ValueError(f"--out {str(out)!r}: expected a .npy or .png file name")
    if iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {iterations}")
    if alpha != "auto":
        try:
            alpha_value = float(alpha)
        except ValueError:
            raise ValueError(f"--alpha {alpha!r}: expected a number >= 0 or 'auto'") from None
        if not alpha_value >= 0:
            raise ValueError(f"--alpha {alpha!r}: expected a number >= 0 or 'auto'")
    x = read_ground_truth(input, slice_index, size)
    p = build_problem(problem, x, angles, photons, mu, mask, rate, noise, seed)
    if method in ANALYTIC and method != p.analytic_name:
        raise ValueError(f"--method {method!r} is not defined for --problem {problem}; use "
                         f"{p.analytic_name!r} or a variational method")
    y = p.simulate(x, seed=seed)
    t0 = time.perf_counter()
    if method in ANALYTIC:
        u = p.analytic(y)
        info = ""
    else:
        from spinv.variational.reconstruct import reconstruct_variational

        ref = None
        if method == "dtv":
            if reference is None:
                raise ValueError("--method dtv needs --reference FILE (a registered image)")
            ref = read_ground_truth(reference, None, x.shape[-1] if size else None)
            if ref.shape != x.shape:
                raise ValueError(f"--reference shape {tuple(ref.shape)} != input {tuple(x.shape)}")
        alpha_value = (_tune_alpha(p, x, method, iterations, seed) if alpha == "auto"
                       else alpha_value)
        u = reconstruct_variational(p.operator, y, method, alpha_value, reference=ref,
                                    iterations=iterations)
        info = f"  alpha={alpha_value:.4g}"
    elapsed = time.perf_counter() - t0
    mag = u.abs() if u.is_complex() else u
    ps, ss = float(psnr(mag.float(), x)[0]), float(ssim(mag.float(), x)[0])
    save_array_image(out, u)
    typer.echo(f"{problem} {method}: PSNR {ps:.2f} dB  SSIM {ss:.4f}{info}  "
               f"({elapsed:.1f} s)  -> {out}")


def register(app: typer.Typer) -> None:
    app.command("reconstruct")(reconstruct)
