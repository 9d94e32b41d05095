"""Shared plumbing of the CLI commands: reading a ground-truth image, building a problem from
command-line options, atomic output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import typer

from spinv.problems import (
    KINDS,
    FanGeometry,
    Problem,
    ct_problem,
    denoising_problem,
    mri_problem,
)

# Options shared by `spinv simulate` and `spinv reconstruct` (one definition, one help text).
PROBLEM = typer.Option(..., "--problem", help="ct | mri | denoise")
INPUT = typer.Option(..., "--input", help="ground truth: image, DICOM, NIfTI, HDF5")
SLICE = typer.Option(None, "--slice", help="slice of a stack (default: middle)")
SIZE = typer.Option(None, "--size", help="resize the image to SIZE x SIZE first")
ANGLES = typer.Option(50, "--angles", help="CT: number of views in [0, pi) (fan beam: "
                      "source positions in [0, 2 pi))")
PHOTONS = typer.Option(1e4, "--photons", help="CT: photons per detector pixel N_in")
MU = typer.Option(None, "--mu", help="CT: base attenuation (default: from the size)")
MASK = typer.Option("lines", "--mask", help="MRI: random|variable-density|lines|"
                    "equispaced-lines|low-pass|radial, FILE.npy or a zoo pattern's name")
RATE = typer.Option(0.25, "--rate", help="MRI: sampling rate in (0, 1]")
NOISE = typer.Option(None, "--noise", help="MRI/denoise: noise level sigma")
SEED = typer.Option(0, "--seed", help="seed of the mask and the noise")
GEOMETRY = typer.Option("parallel", "--geometry", help="CT: parallel | fan (fan beam; a full "
                        "360 deg scan)")
SOURCE_DISTANCE = typer.Option(None, "--source-distance", help="fan beam: source to "
                               "isocentre in pixels (default 2 N)")
DETECTOR_DISTANCE = typer.Option(None, "--detector-distance", help="fan beam: source to "
                                 "detector in pixels (default twice the source distance)")
DETECTOR_TYPE = typer.Option("equiangular", "--detector-type", help="fan beam: equiangular "
                             "(curved) | flat")


def fan_option(geometry: str, source_distance: float | None, detector_distance: float | None,
               detector_type: str) -> FanGeometry | None:
    """The :class:`~spinv.problems.FanGeometry` of the CLI's fan options (``None``: parallel
    beams); errors name the option."""
    if geometry not in ("parallel", "fan"):
        raise ValueError(f"--geometry {geometry!r}: expected parallel or fan")
    if geometry == "parallel":
        given = [name for name, v in (("--source-distance", source_distance),
                                      ("--detector-distance", detector_distance),
                                      ("--detector-type", detector_type != "equiangular" or None))
                 if v is not None]
        if given:
            raise ValueError(f"{given[0]}: applies to fan beams only; add --geometry fan")
        return None
    for option, v in (("--source-distance", source_distance),
                      ("--detector-distance", detector_distance)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"{option} {v!r}: expected a positive distance in pixels")
    if detector_type not in ("equiangular", "flat"):
        raise ValueError(f"--detector-type {detector_type!r}: expected equiangular or flat")
    return FanGeometry(source_distance, detector_distance, detector_type)


def fan_error(err: ValueError) -> ValueError:
    """A problem's fan-geometry error with the CLI option named instead of the dict key."""
    text = str(err)
    for key in ("source_distance", "detector_distance", "detector_spacing"):
        text = text.replace(f"geometry.fan.{key}", "--" + key.replace("_", "-"))
    return ValueError(text.replace("geometry.detector_spacing", "--detector-spacing"))


def read_ground_truth(path: str, index: int | None = None, size: int | None = None) -> torch.Tensor:
    """One image ``(1, 1, H, W)`` in [0, 1] from a file or folder (.npy/.png/.tif, DICOM,
    NIfTI, HDF5 via :func:`spinv.data.io.load_images`); ``index`` picks a slice of a stack
    (default: the middle one); ``size`` resizes (bilinear, antialiased) to ``size``²."""
    from spinv.data.io import load_images

    stack = load_images(path)
    if index is None:
        index = stack.shape[0] // 2
    if not -stack.shape[0] <= index < stack.shape[0]:
        raise ValueError(f"--slice {index}: {path!r} holds {stack.shape[0]} image(s)")
    x = torch.from_numpy(np.ascontiguousarray(stack[index]))[None, None].float()
    if not torch.isfinite(x).all():
        raise ValueError(f"--input {path!r} contains NaN or infinite values")
    if size is not None:
        if size < 8:
            raise ValueError(f"--size must be >= 8, got {size}")
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)
    return x


def build_problem(
    kind: str,
    image: torch.Tensor,
    angles: int,
    photons: float | None,
    mu: float | None,
    mask: str,
    rate: float,
    noise: float | None,
    seed: int,
    fan: FanGeometry | None = None,
) -> Problem:
    """The problem named ``kind`` for ``image`` with the CLI's options (``fan``: CT fan-beam
    geometry, :func:`fan_option`)."""
    if kind not in KINDS:
        raise ValueError(f"--problem {kind!r}: expected one of {', '.join(KINDS)}")
    h, w = image.shape[-2:]
    if fan is not None and kind != "ct":
        raise ValueError(f"--geometry fan: applies to --problem ct only, not {kind!r}")
    if kind == "ct":
        if h != w:
            raise ValueError(
                f"--input: CT needs a square image, got {h}x{w}; pass --size N to resize"
            )
        try:
            return ct_problem(h, n_angles=angles, photons=photons, mu=mu,
                              geometry="parallel" if fan is None else fan)
        except ValueError as err:
            raise fan_error(err) from None
    if kind == "mri":
        if not 0 < rate <= 1:
            raise ValueError(f"--rate must lie in (0, 1], got {rate}")
        from spinv.zoo.patterns import zoo_pattern_file

        mask = str(zoo_pattern_file(mask) or mask)  # a zoo pattern's name resolves like a file
        return mri_problem((h, w), pattern=mask, rate=rate, noise=0.02 if noise is None else noise,
                           seed=seed)
    return denoising_problem(0.1 if noise is None else noise, size=(h, w))


def save_array_image(path: Path, x: torch.Tensor) -> None:
    """Save a reconstruction: ``.npy`` (float32, or complex64 for complex data) or ``.png``."""
    from spinv.data.io import save_image

    path = Path(path)
    if path.suffix not in (".npy", ".png"):
        raise ValueError(f"--out {str(path)!r}: expected a .npy or .png file name")
    arr = x.detach().cpu()[0, 0]
    if path.suffix == ".png":
        arr = arr.abs() if arr.is_complex() else arr
        arr = arr.clamp(0, 1)
    save_image(path, arr.numpy())


