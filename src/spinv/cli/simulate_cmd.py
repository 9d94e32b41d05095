"""``spinv simulate``: measurements of a ground truth (CT sinogram, MRI k-space, noisy image)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from spinv.atomic import atomic_save_npz
from spinv.cli._common import (
    ANGLES,
    DETECTOR_DISTANCE,
    DETECTOR_TYPE,
    GEOMETRY,
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
    SOURCE_DISTANCE,
    build_problem,
    fan_option,
    read_ground_truth,
)


def simulate(
    problem: str = PROBLEM,
    input: str = INPUT,
    out: Path = typer.Option(..., "--out", help="output .npz (y, ground truth, mask, options, "
                             "problem: the serialised set-up as JSON)"),
    slice_index: int = SLICE,
    size: int = SIZE,
    angles: int = ANGLES,
    photons: float = PHOTONS,
    mu: float = MU,
    mask: str = MASK,
    rate: float = RATE,
    noise: float = NOISE,
    seed: int = SEED,
    geometry: str = GEOMETRY,
    source_distance: float = SOURCE_DISTANCE,
    detector_distance: float = DETECTOR_DISTANCE,
    detector_type: str = DETECTOR_TYPE,
    coils: int = typer.Option(None, "--coils", help="MRI: that many simulated birdcage receive "
                              "coils (multi-coil SENSE data, noise --noise per coil)"),
) -> None:
    """Simulate noisy measurements of a ground-truth image and save them as .npz.

    The entry ``problem`` holds :meth:`spinv.problems.Problem.to_dict` as JSON (kind, size,
    geometry, noise, the MRI mask itself), so the measurements can be reconstructed without
    the command line that made them."""
    if out.suffix != ".npz":
        raise ValueError(f"--out {str(out)!r}: expected a .npz file name")
    fan = fan_option(geometry, source_distance, detector_distance, detector_type)
    x = read_ground_truth(input, slice_index, size)
    p = build_problem(problem, x, angles, photons, mu, mask, rate, noise, seed, fan)
    from spinv.cli._multicoil import with_coils

    p = with_coils(p, coils)
    y = p.simulate(x, seed=seed)
    extra = {"mask": p.operator.mask.cpu().numpy()} if problem == "mri" else {}
    options = {"problem": problem, "seed": seed, "input": input}
    if problem == "ct":
        options.update(photons=p.noise.photons, mu=mu, upsample=p.geometry.upsample,
                       angles=angles, geometry=geometry)
    else:
        options["noise"] = p.noise.sigma
    atomic_save_npz(out, y=y.cpu().numpy(), ground_truth=x.cpu().numpy(),
                    options=json.dumps(options), problem=json.dumps(p.to_dict()), **extra)
    typer.echo(f"wrote {out} (y shape {tuple(y.shape)}, {y.dtype})")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
