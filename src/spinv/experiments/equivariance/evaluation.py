"""Evaluation of the chapter-2 reconstructions (thesis §2.5.2, "Performance measures"): PSNR
and SSIM (:mod:`spinv.metrics`, data range 1) on the whole image and inside the region of
interest (the SSIM map averaged over the mask), on the upright and the rotated held-out sets."""

from __future__ import annotations

import torch

__all__ = ["evaluate_model", "image_metrics", "reconstruct_all"]


def reconstruct_all(model, y: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """Apply ``model`` to each measurement in ``y`` (one at a time, no gradients); real output
    as float32, complex output (MRI) as complex64."""
    with torch.no_grad(), torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=bf16):
        rec = torch.cat([model(y[i : i + 1]) for i in range(len(y))])
    return rec.to(torch.complex64) if rec.is_complex() else rec.float()


def image_metrics(rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> dict:
    """Per-image and mean PSNR/SSIM (data range 1) of ``rec`` against ``x``, on the whole image
    and inside ``mask`` (keys ``psnr``, ``ssim``, ``psnr_roi``, ``ssim_roi``, ``mean_*``)."""
    from spinv.metrics import psnr, ssim

    rec = rec.abs() if rec.is_complex() else rec
    out = {
        "psnr": psnr(rec, x, data_range=1.0).tolist(),
        "ssim": ssim(rec, x, data_range=1.0).tolist(),
        "psnr_roi": psnr(rec, x, mask=mask, data_range=1.0).tolist(),
        "ssim_roi": ssim(rec, x, mask=mask, data_range=1.0).tolist(),
    }
    out.update({f"mean_{k}": sum(v) / len(v) for k, v in list(out.items())})
    return out


def evaluate_model(model, data, bf16: bool = False, keep: dict | None = None) -> dict[str, dict]:
    """ROI and whole-image metrics on the upright and rotated held-out sets; with a dict
    ``keep``, the reconstructions (moduli, CPU) are stored in it under ``upright``/``rotated``."""
    model.eval()
    out = {}
    for split, y, x, mask in (("upright", data.y_test, data.x_test, data.mask_test),
                              ("rotated", data.y_rot, data.x_rot, data.mask_rot)):
        rec = reconstruct_all(model, y, bf16).cpu()
        out[split] = image_metrics(rec, x.cpu(), mask.cpu())
        if keep is not None:
            keep[split] = rec.abs() if rec.is_complex() else rec
    return out
