"""``spinv reconstruct``: reconstruct measured data (``--measurements``) or simulate-then-
reconstruct a ground truth (``--input``), with any method of :mod:`spinv.reconstruction`."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import typer

from spinv.cli._common import (
    DETECTOR_DISTANCE,
    DETECTOR_TYPE,
    GEOMETRY,
    INPUT,
    MU,
    SEED,
    SLICE,
    SOURCE_DISTANCE,
    build_problem,
    fan_error,
    fan_option,
    read_ground_truth,
)

METHOD_HELP = ("fbp | zero-filled | noisy | tv | tv-smooth | tgv | wavelet | h1 | dtv | lpg | lpd "
               "| postprocess-cnn | pnp-pgd | pnp-admm | generative")


def _problem_of(meas, opts: dict):
    """The problem of read measurements, and whether their noise level is known."""
    from spinv.problems import Problem, ct_problem, mri_problem

    if meas.problem is not None:
        problem = Problem.from_dict(meas.problem)
        geom = problem.geometry
        if geom is not None and opts["angles"] not in (None, geom.n_angles):
            raise ValueError(f"--angles {opts['angles']}: {meas.source!r} records "
                             f"{geom.n_angles} views; omit --angles")
        if geom is not None and opts["fan"] is not None and geom.fan is None:
            raise ValueError(f"--geometry fan: {meas.source!r} records a parallel-beam "
                             "problem; omit --geometry")
        return problem, True
    if meas.kind == "ct" and opts["fan"] is not None:
        return _fan_problem_of(meas, opts), opts["photons"] is not None
    if meas.kind == "ct":
        n_angles, n_det = meas.y.shape[-2:]
        spacing = _given(opts["detector_spacing"], 1.0)
        size = opts["size"] or math.floor(n_det * spacing / math.sqrt(2))
        problem = ct_problem(size, int(n_angles), photons=opts["photons"], mu=opts["mu"],
                             upsample=1, n_detectors=int(n_det),
                             angular_range=math.radians(_given(opts["angular_range"], 180.0)),
                             detector_spacing=spacing)
        return problem, opts["photons"] is not None
    h, w = meas.y.shape[-2:]
    mask = meas.mask if meas.mask is not None else torch.ones(h, w)
    noise = opts["noise"]
    return mri_problem((h, w), mask=mask, noise=0.0 if noise is None else noise), \
        noise is not None


def _given(value, default):
    """``value`` unless the option was omitted (``None``)."""
    return default if value is None else value


def _fan_problem_of(meas, opts: dict):
    """The fan-beam problem of a raw sinogram: views x detectors from the array, the image
    size from --size (the fan's geometry does not fix it)."""
    from spinv.problems import ct_problem

    n_angles, n_det = meas.y.shape[-2:]
    if opts["size"] is None:
        raise ValueError(f"--size: a fan-beam sinogram ({n_angles} views x {n_det} detectors "
                         f"in {meas.source!r}) needs the image size N; pass --size N")
    try:
        return ct_problem(opts["size"], int(n_angles), photons=opts["photons"], mu=opts["mu"],
                          upsample=1, n_detectors=int(n_det), geometry=opts["fan"],
                          angular_range=math.radians(_given(opts["angular_range"], 360.0)),
                          detector_spacing=opts["detector_spacing"])
    except ValueError as err:
        raise fan_error(err) from None


def _read(measurements: str, opts: dict):
    from spinv.data.measurements import SinogramGeometry, read_measurements

    default_range = 180.0 if opts["fan"] is None else 360.0
    geometry = SinogramGeometry(opts["angles"], opts["detectors"],
                                math.radians(_given(opts["angular_range"], default_range)),
                                _given(opts["detector_spacing"], 1.0))
    mask = None
    if opts["mask"] is not None:
        from spinv.zoo.patterns import zoo_pattern_file

        path = str(zoo_pattern_file(opts["mask"]) or opts["mask"])  # zoo pattern name: its file
        if not path.endswith(".npy"):
            raise ValueError(f"--mask {opts['mask']!r}: with --measurements pass a .npy mask "
                             "((W,) or (H, W) weights in [0, 1]) or a zoo sampling pattern "
                             "(`spinv models list`: sampling-*)")
        from spinv.data.npy import read_npy

        mask = read_npy(path, "--mask", kinds="biuf")
    return read_measurements(measurements, geometry=geometry, mask=mask)


def _reference(path: str | None, meas, recon: torch.Tensor) -> tuple[torch.Tensor, str] | None:
    import numpy as np

    if path is None:
        if meas is not None and meas.ground_truth is not None:
            return meas.ground_truth, "ground truth stored in the measurements"
        return None
    from spinv.data.io import load_images

    ref = torch.from_numpy(np.ascontiguousarray(load_images(path, normalize="none")))[:, None]
    if ref.shape[0] != recon.shape[0] or ref.shape[-2:] != recon.shape[-2:]:
        raise ValueError(f"--reference {path!r} holds {tuple(ref.shape[::2])} images of "
                         f"{tuple(ref.shape[-2:])}; the reconstruction is "
                         f"{recon.shape[0]} of {tuple(recon.shape[-2:])}")
    return ref.float(), path


def _metrics(recon: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    from spinv.metrics import psnr, ssim

    mag = (recon.abs() if recon.is_complex() else recon).float()
    span = ref.flatten(1).amax(1) - ref.flatten(1).amin(1)
    span = torch.where(span > 0, span, torch.ones_like(span))
    return (float(psnr(mag, ref, data_range=span).mean()),
            float(ssim(mag, ref, data_range=span).mean()))


def reconstruct(
    measurements: str = typer.Option(None, "--measurements", help="measured data: the .npz of "
                                     "`spinv simulate`, a raw sinogram (.npy/.npz/folder), or "
                                     "fastMRI HDF5 single- or multi-coil k-space"),
    input: str = typer.Option(None, "--input", help=INPUT.help + " (simulate first)"),
    problem: str = typer.Option(None, "--problem", help="with --input: ct | mri | denoise"),
    method: str = typer.Option(..., "--method", help=METHOD_HELP),
    out: Path = typer.Option(..., "--out", help="reconstruction .npy, .png, .nii.gz, or a folder "
                             "(no suffix) for a derived DICOM series"),
    model: str = typer.Option(None, "--model", help="learned/PnP/generative methods: run "
                              "directory or zoo name (`spinv models list`)"),
    prior: str = typer.Option("covariance", "--prior", help="generative: the VAE prior, mean | "
                              "covariance | range (talk 002)"),
    alpha: str = typer.Option("auto", "--alpha", help="variational/prior weight, or 'auto' (tuned "
                              "on bundled training images, generative: validation slices, "
                              "simulated with the same problem)"),
    iterations: int = typer.Option(300, "--iterations", help="solver / PnP iterations (generative: "
                                    "fixed, 15 rounds x 5 latent steps as in the experiment)"),
    reference: str = typer.Option(None, "--reference", help="ground-truth image(s) for "
                                  "PSNR/SSIM"),
    guide: str = typer.Option(None, "--guide", help="dtv: registered reference image"),
    angles: int = typer.Option(None, "--angles", help="CT views (--input: default 50; raw "
                               "sinogram: checked against its rows)"),
    detectors: int = typer.Option(None, "--detectors", help="raw sinogram: detector bins "
                                  "(checked against its columns)"),
    angular_range: float = typer.Option(None, "--angular-range", help="raw sinogram: views "
                                        "equispaced on [0, RANGE) degrees (default 180; fan "
                                        "beam 360, less is a short scan)"),
    detector_spacing: float = typer.Option(None, "--detector-spacing", help="raw sinogram: "
                                           "detector bin width in pixels (default 1; fan beam: "
                                           "at the detector, default 1 pixel at the isocentre)"),
    geometry: str = GEOMETRY,
    source_distance: float = SOURCE_DISTANCE,
    detector_distance: float = DETECTOR_DISTANCE,
    detector_type: str = DETECTOR_TYPE,
    size: int = typer.Option(None, "--size", help="image size N (--input: resize to NxN; raw "
                             "sinogram: default from the detector count)"),
    photons: float = typer.Option(None, "--photons", help="CT photons per detector pixel "
                                  "(--input: default 1e4; raw data: unknown unless given)"),
    mu: float = MU,
    mask: str = typer.Option(None, "--mask", help="MRI: --input: a pattern name or FILE.npy "
                             "(default lines); --measurements: FILE.npy weights or a zoo "
                             "pattern name"),
    rate: float = typer.Option(0.25, "--rate", help="MRI with --input: sampling rate"),
    calibration: int = typer.Option(None, "--calibration", help="multi-coil k-space: central "
                                    "columns used to estimate the coil maps by ESPIRiT "
                                    "(default: every fully sampled central column)"),
    noise: float = typer.Option(None, "--noise", help="MRI/denoise noise level sigma"),
    pnp_weight: float = typer.Option(1.0, "--pnp-weight", help="PnP relaxation weight in (0, 1]"),
    pnp_step: float = typer.Option(1.0, "--pnp-step", help="PnP-PGD step c: tau = c/||A||^2"),
    pnp_rho: float = typer.Option(0.1, "--pnp-rho", help="PnP-ADMM penalty r: rho = r ||A||^2"),
    batch_size: int = typer.Option(8, "--batch-size", help="slices reconstructed at a time"),
    slice_index: int = SLICE,
    seed: int = SEED,
    force: bool = typer.Option(False, "--force", help="replace an existing --out"),
) -> None:
    """Reconstruct --measurements (no ground truth needed) or simulate --input and reconstruct,
    with --method; print PSNR/SSIM when a reference is known; save --out."""
    from spinv.reconstruction import ReconstructionOptions

    if (measurements is None) == (input is None):
        raise ValueError("pass exactly one of --measurements FILE (measured data) or --input "
                         "FILE (a ground truth to simulate from)")
    options = ReconstructionOptions(
        method, _alpha(alpha), iterations, model,
        None if guide is None else read_ground_truth(guide, None, size),
        pnp_weight, pnp_step, pnp_rho, batch_size, seed, prior=prior)
    if out.exists() and not force and not (out.is_dir() and not any(out.iterdir())):
        raise ValueError(f"--out {str(out)!r} exists; pass --force to replace it")
    opts = {"fan": fan_option(geometry, source_distance, detector_distance, detector_type),
            "angles": angles, "detectors": detectors, "angular_range": angular_range,
            "detector_spacing": detector_spacing, "size": size, "photons": photons, "mu": mu,
            "mask": mask, "noise": noise, "rate": rate, "slice": slice_index, "seed": seed,
            "calibration": calibration}
    if measurements is not None:
        setup = _measured_setup(measurements, opts)
    else:
        setup = _simulated_setup(input, problem, opts)
    _run_and_save(setup, options, out, reference, force)


def _alpha(alpha: str) -> float | None:
    """``--alpha``: ``auto`` (None: tuned) or a number."""
    if alpha == "auto":
        return None
    try:
        return float(alpha)
    except ValueError:
        raise ValueError(f"--alpha {alpha!r}: expected a number >= 0 or 'auto'") from None


def _measured_setup(measurements: str, opts: dict) -> dict:
    """Problem, data and bookkeeping of --measurements."""
    from spinv.cli._multicoil import is_multicoil, multicoil_setup

    meas = _read(measurements, opts)
    if is_multicoil(meas):
        return multicoil_setup(meas, opts, measurements)
    if opts.get("calibration") is not None:
        raise ValueError(f"--calibration {opts['calibration']}: only multi-coil k-space uses it "
                         "(to estimate coil maps); omit it")
    p, noise_known = _problem_of(meas, opts)
    return {"problem": p, "y": meas.y, "noise_known": noise_known, "crop": meas.crop,
            "scale": meas.scale, "meas": meas, "truth": None,
            "label": f"{p.kind} {len(meas)} slice(s) from {measurements}"}


def _simulated_setup(input: str, problem: str | None, opts: dict) -> dict:
    """Problem and simulated data of --input (the research path)."""
    if problem is None:
        raise ValueError("--input needs --problem ct | mri | denoise")
    x = read_ground_truth(input, opts["slice"], opts["size"])
    p = build_problem(problem, x, 50 if opts["angles"] is None else opts["angles"],
                      1e4 if opts["photons"] is None else opts["photons"], opts["mu"],
                      "lines" if opts["mask"] is None else opts["mask"], opts["rate"],
                      opts["noise"], opts["seed"], opts["fan"])
    return {"problem": p, "y": p.simulate(p.ground_truth(x), seed=opts["seed"]),
            "noise_known": True, "crop": None, "scale": 1.0, "meas": None, "truth": (x, input),
            "label": f"{problem} (simulated from {input})",
            "dicom": _dicom_template(input, opts["slice"])}


def _dicom_template(path: str, index: int | None) -> list | None:
    """The DICOM dataset of the input slice (for a derived series), or None for other files."""
    from spinv.data.io import is_dicom

    p = Path(path)
    files = [p] if p.is_file() else sorted(p.glob("*")) if p.is_dir() else []
    if not any(f.is_file() and is_dicom(f) for f in files):
        return None
    from spinv.data.io import dicom_datasets

    datasets = dicom_datasets(p)
    return [datasets[len(datasets) // 2 if index is None else index]]


def _run_and_save(setup: dict, options, out: Path, reference: str | None, force: bool) -> None:
    """Reconstruct, crop (fastMRI), write --out, print metrics when a reference is known."""
    from spinv.data.io import save_volume
    from spinv.reconstruction import reconstruct as run

    t0 = time.perf_counter()
    if "problems" in setup:  # multi-coil: one problem (coil maps) per slice
        from spinv.cli._multicoil import reconstruct_slices

        recon = reconstruct_slices(run, setup["problems"], setup["y"], options,
                                   _progress_bar(len(setup["y"])), setup["noise_known"])
    else:
        recon = run(setup["problem"], setup["y"], options,
                    progress=_progress_bar(len(setup["y"])), noise_known=setup["noise_known"])
    elapsed = time.perf_counter() - t0
    if setup["crop"] is not None:
        from spinv.data.measurements import center_crop

        recon = center_crop(recon, setup["crop"])
    scaled = recon * setup["scale"]
    ref = setup["truth"] or _reference(reference, setup["meas"], recon)
    if out.suffix == "":
        from spinv.data.dicom_out import write_dicom_series

        written = write_dicom_series(out, scaled.detach().cpu().numpy()[:, 0],
                                     setup.get("dicom"), options.method, force=force)
    else:
        written = save_volume(out, scaled if out.suffix == ".npy" else recon, force=force)
    line = f"{setup['label']} {options.method}: "
    if ref is not None:
        ps, ss = _metrics(scaled, ref[0])
        line += f"PSNR {ps:.2f} dB  SSIM {ss:.4f} (vs {ref[1]})  "
    where = written[0] if len(written) == 1 else f"{written[0]} ... ({len(written)} files)"
    typer.echo(f"{line}({elapsed:.1f} s)  -> {where}")


def _progress_bar(total: int):
    """A tqdm bar on stderr for several slices (none for one)."""
    if total <= 1:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="slice", desc="reconstructing", leave=False)

    def update(done: int, _total: int, _scalars: dict) -> None:
        bar.update(done - bar.n)
        if done >= _total:
            bar.close()

    return update


def register(app: typer.Typer) -> None:
    app.command("reconstruct")(reconstruct)
