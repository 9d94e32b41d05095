"""fastMRI multi-coil HDF5 k-space: ``kspace`` ``(slices, coils, H, W)`` complex, read into spinv's
centred convention (:func:`~spinv.data.measurements.fastmri_to_spinv_kspace`, applied to every
coil), with the file's ``mask`` (or the caller's), its output crop and, when the file has one,
its ``reconstruction_rss`` (the fully sampled root-sum-of-squares images of fastMRI's training
and validation files) as the reference images.

Intensities: as for single-coil files, the k-space of the volume is divided by one ``scale``,
the maximum of its cropped zero-filled RSS images (:attr:`Measurements.scale`); the stored RSS
references stay in the file's units (reconstructions are multiplied back by ``scale`` before
they are compared).

Coil sensitivities are not stored in fastMRI files: :func:`estimate_sensitivities` estimates them
per slice by ESPIRiT from the fully sampled calibration region
(:mod:`spinv.operators.coil_sensitivities`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["read_fastmri_multicoil", "estimate_sensitivities"]


def read_fastmri_multicoil(p: Path, f, mask=None, slices: slice | None = None):
    """The :class:`~spinv.data.measurements.Measurements` of an open multi-coil fastMRI file
    ``f`` (path ``p``): ``y`` ``(slices, coils, H, W)`` complex64, masked entries zero."""
    from spinv.data.measurements import (
        Measurements,
        _bad,
        _fastmri_mask,
        center_crop,
        fastmri_crop_size,
        fastmri_to_spinv_kspace,
    )

    ds = f["kspace"]
    k = np.asarray(ds[slices] if slices is not None else ds[()])
    if not np.iscomplexobj(k):
        raise _bad(p, f"kspace must be complex, got dtype {k.dtype}")
    if not np.isfinite(k.view(k.real.dtype)).all():
        raise _bad(p, "kspace contains NaN or infinite values")
    crop = fastmri_crop_size(f)
    m = _fastmri_mask(p, f, mask, k.shape[-2:])
    truth = None
    if "reconstruction_rss" in f:
        rss = np.asarray(f["reconstruction_rss"][slices] if slices is not None
                         else f["reconstruction_rss"][()], dtype=np.float32)
        truth = torch.from_numpy(rss)[:, None]
    kt = fastmri_to_spinv_kspace(torch.from_numpy(k.astype(np.complex64)))
    if m is not None:
        kt = kt * m
    coil_images = torch.fft.ifft2(torch.fft.ifftshift(kt, dim=(-2, -1)), norm="ortho")
    rss_zero_filled = center_crop(coil_images.abs().pow(2).sum(1).sqrt(), crop)
    scale = float(rss_zero_filled.max())
    if not scale > 0:
        raise _bad(p, "the k-space is all zeros")
    first = 0 if slices is None else (slices.start or 0)
    return Measurements(y=kt / scale, kind="mri", source=str(p), mask=m, crop=crop, scale=scale,
                        names=[f"{p.name}[{first + i}]" for i in range(kt.shape[0])],
                        ground_truth=truth)


def estimate_sensitivities(y: torch.Tensor, mask: torch.Tensor | None,
                           calibration: int | None = None) -> torch.Tensor:
    """ESPIRiT maps ``(B, coils, H, W)`` of multi-coil k-space ``y`` ``(B, coils, H, W)``, one
    set per slice, from the central ``calibration`` columns (``None``: every contiguous fully
    sampled central column of ``mask``; without a mask, the central 24 columns)."""
    from spinv.operators.coil_sensitivities import calibration_region, espirit_maps

    h, w = y.shape[-2:]
    if mask is None:
        mask = torch.ones(h, w)
        calibration = min(w, 24) if calibration is None else calibration
    try:
        region = calibration_region(mask, calibration)
    except ValueError as err:
        text = str(err).replace("width=", "--calibration ", 1)
        raise ValueError(text) from None
    return torch.stack([espirit_maps(y[i], region) for i in range(y.shape[0])])
