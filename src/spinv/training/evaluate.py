"""Evaluation of a trained reconstruction model on held-out images.

For test images :math:`u_i^*` with fixed simulated measurements :math:`y_i` (noise fixed by the
evaluation seed; optionally rotated, as in the "rotated test images" of Section 2.5.3 of the
thesis), it reports per image and as mean ± standard deviation the PSNR and SSIM (thesis
appendix "Definitions of performance measures") of :math:`\\Phi_\\theta(y_i)` and of the
analytic baseline :math:`u_0(y_i)` (FBP for CT, zero filling :math:`A^*y` otherwise); with
``roi=True`` both are computed on a region of interest (masked PSNR and the mean of the SSIM map
over the mask, Section 2.5.2). Complex (MRI) images are compared through their magnitudes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_write_bytes, atomic_write_json
from spinv.training.config import ExperimentConfig, parse_rotation
from spinv.training.data import Simulator, fixed_set, load_images_for


def baseline(operator: Any, y: torch.Tensor) -> torch.Tensor:
    """Analytic reconstruction: ``operator.fbp(y)`` if available, else ``operator.adjoint(y)``."""
    return operator.fbp(y) if hasattr(operator, "fbp") else operator.adjoint(y)


def roi_masks(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Region-of-interest masks ``(B, 1, H, W)`` (float 0/1) of ground truths ``x``.

    CT: the body mask :func:`spinv.data.transforms.body_mask_ct` (the thesis evaluates on the
    lung regions of chest CT, Section 2.5.3; the bundled head CT has none, so the body is the
    region of interest); MRI and denoising: the foreground mask
    :func:`spinv.data.transforms.roi_mask_mri` (convex hull of the thresholded image, §2.5.4).
    """
    from spinv.data.transforms import body_mask_ct, roi_mask_mri

    mag = x.abs() if x.is_complex() else x
    m = body_mask_ct(mag) if kind == "ct" else roi_mask_mri(mag)
    return torch.as_tensor(m, device=x.device).float()


def _stats(values: list[float]) -> dict:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "median": float(np.median(arr)),
        "n": int(arr.size),
    }


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    cfg: ExperimentConfig,
    dataset: str,
    split: str = "test",
    rotate: str | float | None = None,
    roi: bool = False,
    n_images: int | None = None,
    seed: int = 1234,
    batch_size: int = 8,
) -> tuple[dict, dict]:
    """Evaluate ``model`` on ``dataset`` (bundled name or path); returns ``(metrics, arrays)``
    where ``arrays`` holds ``truth``, ``recon``, ``baseline`` (magnitudes, numpy) and ``roi``."""
    from spinv.metrics import psnr, ssim

    rotation = parse_rotation(rotate, "rotate")
    operator = getattr(model, "operator", None)
    if operator is None:
        from spinv.training.data import make_operator

        operator = make_operator(cfg.problem)
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    operator = operator.to(dev)
    images = load_images_for(dataset, split, cfg.problem.image_size, cfg.data.val_size,
                             cfg.data.resize)
    if n_images is not None:
        if n_images < 1:
            raise ValueError(f"n_images={n_images}: expected a positive integer")
        images = images[:n_images]
    if images.shape[0] == 0:
        raise ValueError(f"dataset {dataset!r} split {split!r}: no images")
    sim = Simulator(cfg.problem, operator)
    truth, outs, bases, masks = [], [], [], []
    model.eval()
    for i in range(0, images.shape[0], batch_size):
        x, y = fixed_set(images[i : i + batch_size], sim, seed, "test", rotation,
                         offset=i)
        out = model(y)
        b = baseline(operator, y)
        mag = [t.abs() if t.is_complex() else t for t in (x, out, b)]
        truth.append(mag[0].float().cpu())
        outs.append(mag[1].float().cpu())
        bases.append(mag[2].float().cpu())
        if roi:
            masks.append(roi_masks(mag[0], cfg.problem.kind).cpu())
    x, out, b = torch.cat(truth), torch.cat(outs), torch.cat(bases)
    m = torch.cat(masks) if roi else None
    if m is not None and bool((m.flatten(1).sum(1) == 0).any()):
        raise ValueError("roi: the ROI mask of some test image is empty")
    ps, ss = psnr(out, x, mask=m), ssim(out, x, mask=m)
    bps, bss = psnr(b, x, mask=m), ssim(b, x, mask=m)
    per_image = [
        {"index": i, "psnr": float(ps[i]), "ssim": float(ss[i]),
         "baseline_psnr": float(bps[i]), "baseline_ssim": float(bss[i])}
        for i in range(x.shape[0])
    ]
    metrics = {
        "dataset": str(dataset),
        "split": split,
        "rotate": "none" if rotation is None else rotation,
        "roi": bool(roi),
        "seed": seed,
        "n_images": int(x.shape[0]),
        "problem": cfg.problem.kind,
        "model": cfg.model.name,
        "summary": {
            "psnr": _stats([r["psnr"] for r in per_image]),
            "ssim": _stats([r["ssim"] for r in per_image]),
            "baseline_psnr": _stats([r["baseline_psnr"] for r in per_image]),
            "baseline_ssim": _stats([r["baseline_ssim"] for r in per_image]),
        },
        "per_image": per_image,
    }
    arrays = {"truth": x.numpy()[:, 0], "recon": out.numpy()[:, 0], "baseline": b.numpy()[:, 0]}
    if m is not None:
        arrays["roi"] = m.numpy()[:, 0]
    return metrics, arrays


def save_evaluation(out_dir: str | os.PathLike, metrics: dict, arrays: dict,
                    n_examples: int = 4) -> list[Path]:
    """Write ``metrics.json``, ``examples.npz`` (first ``n_examples`` images) and
    ``examples.png`` into ``out_dir``; returns the written paths."""
    import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", metrics)
    k = min(n_examples, arrays["truth"].shape[0])
    ex = {name: a[:k] for name, a in arrays.items()}
    ex["psnr"] = np.asarray([r["psnr"] for r in metrics["per_image"][:k]])
    ex["ssim"] = np.asarray([r["ssim"] for r in metrics["per_image"][:k]])
    ex["baseline_psnr"] = np.asarray([r["baseline_psnr"] for r in metrics["per_image"][:k]])
    ex["baseline_ssim"] = np.asarray([r["baseline_ssim"] for r in metrics["per_image"][:k]])
    buf = io.BytesIO()
    np.savez_compressed(buf, **ex)
    atomic_write_bytes(out / "examples.npz", buf.getvalue())
    paths = [out / "metrics.json", out / "examples.npz"]
    if k > 0:
        from spinv.plotting import example_figure, save_figure

        fig = example_figure(ex, title=f"{metrics['model']} on {Path(metrics['dataset']).name}")
        paths.append(save_figure(fig, out / "examples.png"))
    return paths
