"""``spinv reconstruct --measurements`` on multi-coil k-space: one SENSE problem per slice, with
ESPIRiT maps estimated from that slice's calibration region
(:func:`spinv.data.multicoil.estimate_sensitivities`), reconstructed slice by slice."""

from __future__ import annotations

import dataclasses

import torch


def with_coils(problem, coils: int | None):
    """``problem`` seen by ``coils`` simulated birdcage coils (``--coils``; ``None``: as is)."""
    if coils is None:
        return problem
    if problem.kind != "mri":
        raise ValueError(f"--coils {coils}: only MRI (--problem mri) has receive coils; omit it")
    if isinstance(coils, bool) or not isinstance(coils, int) or not 1 <= coils <= 64:
        raise ValueError(f"--coils {coils!r}: expected an integer from 1 to 64")
    from spinv.problems import CoilRecipe

    return dataclasses.replace(problem, coils=CoilRecipe(coils))


def is_multicoil(meas) -> bool:
    """Whether read measurements are multi-coil k-space without a stored problem."""
    return meas.kind == "mri" and meas.problem is None and int(meas.y.shape[1]) > 1


def multicoil_setup(meas, opts: dict, source: str) -> dict:
    """The setup of ``_run_and_save``: ``problems`` (one per slice), the data and bookkeeping.
    ``opts["noise"]`` is the per-coil noise level of the scaled data (``None``: unknown)."""
    from spinv.data.multicoil import estimate_sensitivities
    from spinv.problems import mri_problem

    h, w = meas.y.shape[-2:]
    mask = meas.mask if meas.mask is not None else torch.ones(h, w)
    maps = estimate_sensitivities(meas.y, meas.mask, opts.get("calibration"))
    noise = opts["noise"]
    problems = [mri_problem((h, w), mask=mask, noise=0.0 if noise is None else noise,
                            sensitivities=maps[i]) for i in range(len(meas))]
    return {"problem": problems[0], "problems": problems, "y": meas.y,
            "noise_known": noise is not None, "crop": meas.crop, "scale": meas.scale,
            "meas": meas, "truth": None,
            "label": f"mri {len(meas)} slice(s), {meas.y.shape[1]} coils from {source}"}


def reconstruct_slices(run, problems: list, y: torch.Tensor, options, progress=None,
                       noise_known: bool = True) -> torch.Tensor:
    """``run(problem, y_i, options)`` for every slice with its own problem; a tuned
    :math:`\\alpha` (``--alpha auto``) is found on the first slice and reused."""
    outs, alpha = [], options.alpha
    for i, problem in enumerate(problems):
        seen: dict = {}
        out = run(problem, y[i : i + 1], dataclasses.replace(options, alpha=alpha),
                  progress=lambda _d, _t, scalars, seen=seen: seen.update(scalars),
                  noise_known=noise_known)
        alpha = seen.get("alpha", alpha)
        outs.append(out)
        if progress is not None:
            progress(i + 1, len(problems), {})
    return torch.cat(outs)
