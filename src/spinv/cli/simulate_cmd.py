"""``spinv simulate``: measurements of a ground truth (CT sinogram, MRI k-space, noisy image)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from spinv.atomic import atomic_save_npz
from spinv.cli._common import build_problem, read_ground_truth


def simulate(
    problem: str = typer.Option(..., "--problem", help="ct | mri | denoise"),
    input: str = typer.Option(..., "--input", help="ground truth: image, DICOM, NIfTI, HDF5"),
    out: Path = typer.Option(..., "--out", help="output .npz (y, ground truth, mask, options)"),
    slice_index: int = typer.Option(None, "--slice", help="slice of a stack (default: middle)"),
    size: int = typer.Option(None, "--size", help="resize the image to SIZE x SIZE first"),
    angles: int = typer.Option(50, "--angles", help="CT: number of views in [0, pi)"),
    photons: float = typer.Option(1e4, "--photons", help="CT: photons per detector pixel N_in"),
    mu: float = typer.Option(None, "--mu", help="CT: base attenuation (default: from the size)"),
    mask: str = typer.Option("lines", "--mask", help="MRI: random|variable-density|lines|"
                             "equispaced-lines|low-pass|radial or FILE.npy"),
    rate: float = typer.Option(0.25, "--rate", help="MRI: sampling rate in (0, 1]"),
    noise: float = typer.Option(None, "--noise", help="MRI/denoise: noise level sigma"),
    seed: int = typer.Option(0, "--seed", help="seed of the mask and the noise"),
) -> None:
    """Simulate noisy measurements of a ground-truth image and save them as .npz."""
    if out.suffix != ".npz":
        raise ValueError(f"--out {str(out)!r}: expected a .npz file name")
    x = read_ground_truth(input, slice_index, size)
    p = build_problem(problem, x, angles, photons, mu, mask, rate, noise, seed)
    y = p.simulate(x, seed=seed)
    extra = {"mask": p.operator.mask.cpu().numpy()} if problem == "mri" else {}
    options = {"problem": problem, "seed": seed, "input": input, **p.options}
    if problem == "ct":
        options["angles"] = angles
    atomic_save_npz(out, y=y.cpu().numpy(), ground_truth=x.cpu().numpy(),
                    options=json.dumps(options), **extra)
    typer.echo(f"wrote {out} (y shape {tuple(y.shape)}, {y.dtype})")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
