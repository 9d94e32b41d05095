"""Image transforms: rotations (for equivariance experiments) and region-of-interest masks.

Rotations (thesis ch. 2: rotated test images probe equivariance). ``rotate(x, theta)`` turns the
image content counter-clockwise *as displayed* (row 0 at the top) by ``theta`` degrees about the
image centre, on the same pixel grid:

    (R_theta x)(p) = x(c + Q_theta^{-1} (p - c)),  c = ((H-1)/2, (W-1)/2),

where the sample is bilinear (``torch.nn.functional.grid_sample``, ``align_corners=False``) and
points whose preimage falls outside the image get 0. Exact multiples of 90 degrees on square
images use ``torch.rot90`` (no interpolation), which equals the formula above exactly.

Masks (thesis §2.5.2-2.5.4; performance is measured on regions of interest):

* :func:`roi_mask_mri`: threshold the ground truth at a fraction of its maximum, then take the
  convex hull (``skimage.morphology.convex_hull_image``), as in §2.5.4.
* :func:`body_mask_ct`: threshold, keep the largest connected component, fill its holes.

>>> import torch
>>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> bool(torch.equal(rotate(x, 90), torch.rot90(x, 1, dims=(-2, -1))))
True
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rotate", "random_rotation", "roi_mask_mri", "body_mask_ct"]


def _as_4d(images: object, name: str = "images") -> tuple[torch.Tensor, int]:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(images)}")
    nd = images.ndim
    if nd == 2:
        return images[None, None], nd
    if nd == 3:
        return images[:, None], nd
    if nd == 4:
        return images, nd
    raise ValueError(f"{name} must be (H, W), (B, H, W) or (B, C, H, W); got {tuple(images.shape)}")


def _restore(x: torch.Tensor, nd: int) -> torch.Tensor:
    if nd == 2:
        return x[0, 0]
    if nd == 3:
        return x[:, 0]
    return x


def rotate(
    images: torch.Tensor,
    angle_degrees: float | torch.Tensor,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Rotate ``images`` ((H,W), (B,H,W) or (B,C,H,W); real or complex) counter-clockwise.

    ``angle_degrees`` is a scalar or one angle per image (shape (B,)). ``mode`` is passed to
    ``grid_sample`` ("bilinear", "nearest" or "bicubic"); outside the image is 0.
    """
    x, nd = _as_4d(images)
    b, c, h, w = x.shape
    ang = torch.as_tensor(angle_degrees, dtype=torch.float64).flatten().cpu()
    if ang.numel() not in (1, b):
        raise ValueError(
            f"angle_degrees must be a scalar or have one value per image ({b}), "
            f"got {ang.numel()} values"
        )
    if not bool(torch.isfinite(ang).all()):
        raise ValueError(f"angle_degrees must be finite, got {angle_degrees!r}")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    ang = ang.expand(b)
    quarter = torch.remainder(ang, 360.0) / 90.0
    if h == w and bool((quarter == torch.round(quarter)).all()):
        ks = torch.round(quarter).long() % 4
        if bool((ks == ks[0]).all()):
            return _restore(torch.rot90(x, int(ks[0]), dims=(-2, -1)), nd)
        out = torch.stack([torch.rot90(x[i], int(k), dims=(-2, -1)) for i, k in enumerate(ks)])
        return _restore(out, nd)
    if x.is_complex():
        re = rotate(x.real, ang, mode)
        im = rotate(x.imag, ang, mode)
        return _restore(torch.complex(re, im), nd)
    if not x.is_floating_point():
        raise TypeError(f"images must be floating point or complex, got {x.dtype}")
    t = ang * (math.pi / 180.0)
    cos, sin = torch.cos(t), torch.sin(t)
    # Output (xn, yn) in normalised coords (x right, y down) samples the input at Q^{-1}(p):
    # a counter-clockwise turn on screen is clockwise in the y-down frame.
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    grid = F.affine_grid(theta.to(work.dtype).to(x.device), [b, c, h, w], align_corners=False)
    out = F.grid_sample(work, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return _restore(out.to(x.dtype), nd)


def random_rotation(
    images: torch.Tensor,
    seed: int | torch.Generator | None = None,
    max_angle: float = 180.0,
    group_order: int | None = None,
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each image by its own random angle; returns ``(rotated, angles_degrees)``.

    Angles are uniform on ``[-max_angle, max_angle)``, or, with ``group_order=m``, uniform on
    the multiples of ``360/m`` (the rotation group C_m). Deterministic given ``seed``.
    """
    x, nd = _as_4d(images)
    if isinstance(seed, torch.Generator):
        gen = seed
    else:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
        gen = torch.Generator()
        gen.manual_seed(seed if seed is not None else int(torch.seed() % (2**62)))
    b = x.shape[0]
    if group_order is not None:
        if not isinstance(group_order, int) or group_order < 1:
            raise ValueError(f"group_order must be a positive int, got {group_order!r}")
        k = torch.randint(0, group_order, (b,), generator=gen, dtype=torch.int64)
        angles = k.to(torch.float64) * (360.0 / group_order)
    else:
        if not max_angle > 0:
            raise ValueError(f"max_angle must be positive, got {max_angle!r}")
        u = torch.rand(b, generator=gen, dtype=torch.float64)
        angles = (2.0 * u - 1.0) * max_angle
    return _restore(rotate(x, angles, mode), nd), angles.to(torch.float32)


def _to_numpy_mag(images: object) -> tuple[np.ndarray, torch.device | None, int, tuple]:
    x, nd = _as_4d(images)
    device = x.device
    a = x.detach()
    if a.is_complex():
        a = a.abs()
    a = a.to(torch.float64).abs().amax(dim=1).cpu().numpy()  # (B, H, W), channels combined
    return a, device, nd, tuple(x.shape)


def _wrap_mask(m: np.ndarray, device: torch.device, nd: int) -> torch.Tensor:
    t = torch.from_numpy(m).to(device)[:, None]
    return _restore(t, nd)


def roi_mask_mri(images: object, threshold: float = 0.1) -> torch.Tensor:
    """Foreground mask of MRI images: convex hull of ``|x| > threshold * max|x|`` (§2.5.4).

    Returns a bool tensor with one channel: (B,1,H,W) for (B,C,H,W) input, (B,H,W) or (H,W)
    for 3-D/2-D input. An image with nothing above the threshold gets an empty mask.
    """
    from skimage.morphology import convex_hull_image

    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    a, device, nd, _ = _to_numpy_mag(images)
    out = np.zeros(a.shape, dtype=bool)
    for i, img in enumerate(a):
        peak = img.max()
        if peak <= 0:
            continue
        fg = img > threshold * peak
        out[i] = convex_hull_image(fg) | fg
    return _wrap_mask(out, device, nd)


def body_mask_ct(images: object, threshold: float = 0.3) -> torch.Tensor:
    """Body mask of CT images in [0, 1]: ``x > threshold``, largest component, holes filled.

    With the bundled ``ct-head`` windowing ((HU + 1000) / 2000), the default 0.3 is -400 HU
    (between air and soft tissue). Output layout as in :func:`roi_mask_mri`.
    """
    from scipy import ndimage

    if not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    a, device, nd, _ = _to_numpy_mag(images)
    out = np.zeros(a.shape, dtype=bool)
    for i, img in enumerate(a):
        labels, n = ndimage.label(img > threshold)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        out[i] = ndimage.binary_fill_holes(labels == int(np.argmax(sizes)))
    return _wrap_mask(out, device, nd)
