"""Image quality measures: PSNR and SSIM, plain and restricted to a region of interest.

Definitions follow the thesis appendix "Definitions of performance measures" and §2.5.2
("Performance measures") for the masked forms.

* PSNR, for a ground truth ``u*`` and reconstruction ``û`` in R^n,

      PSNR(û, u*) = 10 log10( n max_i |u*_i|^2 / ||u* - û||^2 ) = 10 log10( R^2 / MSE ),

  so the default peak ``R`` (``data_range=None``) is ``max_i |u*_i|`` *per image* (over the mask
  when one is given: the masked signal is the signal), not ``max - min``.
* SSIM (Wang et al. 2004 / Brunet et al. 2012) on w x w windows,

      SSIM(û, u*) = (2 mean(û) mean(u*) + c1)(2 s_{û,u*} + c2)
                    / ((mean(û)^2 + mean(u*)^2 + c1)(s_û^2 + s_{u*}^2 + c2)),

  averaged over all windows, with the scikit-image defaults the thesis uses: w = 7 (uniform
  window), ``c1 = (K1 R)^2``, ``c2 = (K2 R)^2``, K1 = 0.01, K2 = 0.03, sample (co)variances with
  the factor N/(N-1), N = w^2. The thesis states c1 = 1e-4, c2 = 9e-4, i.e. ``R = 1`` for images
  in [0, 1]; hence ``data_range=None`` means ``R = 1`` here (pass ``data_range`` for other
  scalings). As in ``skimage.metrics.structural_similarity``, local statistics are box means over
  the image padded by ``w // 2`` with half-sample symmetric reflection (scipy's ``"reflect"``);
  the SSIM is the mean of this full-size SSIM map after cropping ``(w - 1) // 2`` pixels from each
  side, which reproduces the window average above.
* Masked SSIM (§2.5.2): the mean of the (uncropped, aligned) SSIM map over the pixels of the mask.

Inputs may be ``(H, W)``, ``(B, H, W)`` or ``(B, C, H, W)`` tensors (or numpy arrays); both
measures return a float tensor of shape ``(B,)`` (``(1,)`` for a single 2-D image); several
channels are averaged. Complex inputs are compared through their magnitudes (thesis appendix).

>>> import torch
>>> ref = torch.zeros(1, 1, 8, 8); ref[..., 2:6, 2:6] = 1.0
>>> x = ref + 0.1
>>> psnr(x, ref).round(decimals=3)  # peak 1, MSE 0.01
tensor([20.])
>>> bool(ssim(ref, ref).eq(1).all())
True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "ssim_map", "mse"]


def _as_tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x


def _canonical(x: object, name: str) -> torch.Tensor:
    """(H,W) | (B,H,W) | (B,C,H,W) -> real float64 (B,C,H,W); complex -> magnitude."""
    t = _as_tensor(x, name)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[:, None]
    elif t.ndim != 4:
        raise ValueError(
            f"{name} must have shape (H, W), (B, H, W) or (B, C, H, W); got {tuple(t.shape)}"
        )
    if t.is_complex():
        t = t.abs()
    t = t.to(torch.float64)
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN values")
    return t


def _pair(x: object, ref: object) -> tuple[torch.Tensor, torch.Tensor]:
    xt, rt = _canonical(x, "x"), _canonical(ref, "ref")
    if xt.shape != rt.shape:
        raise ValueError(
            f"x and ref must have the same shape; got x {tuple(_as_tensor(x, 'x').shape)} "
            f"and ref {tuple(_as_tensor(ref, 'ref').shape)}"
        )
    return xt, rt.to(xt.device)


def _mask(mask: object, like: torch.Tensor) -> torch.Tensor | None:
    """Mask broadcast to ``like`` (B,C,H,W), as float64 0/1."""
    if mask is None:
        return None
    m = _as_tensor(mask, "mask").to(like.device)
    if m.is_complex():
        raise TypeError("mask must be real (boolean or 0/1), got a complex tensor")
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[:, None]
    try:
        m = torch.broadcast_to(m, like.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(_as_tensor(mask, 'mask').shape)} cannot be broadcast to the "
            f"images' shape {tuple(like.shape)}"
        ) from None
    m = m.to(torch.float64)
    if torch.isnan(m).any():
        raise ValueError("mask contains NaN values")
    m = (m > 0).to(torch.float64)
    empty = m.flatten(1).sum(1) == 0
    if empty.any():
        raise ValueError(f"mask is empty for image(s) {torch.nonzero(empty).flatten().tolist()}")
    return m


def _data_range(data_range: object, batch: int, ref: torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(data_range, dtype=torch.float64, device=ref.device).flatten()
    if r.numel() not in (1, batch):
        raise ValueError(
            f"data_range must be a scalar or have one value per image ({batch}); "
            f"got {r.numel()} values"
        )
    if not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
        raise ValueError(f"data_range must be positive and finite, got {data_range!r}")
    return r.expand(batch)


def _masked_mean(v: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of (B,C,H,W) ``v`` over all pixels or over the mask."""
    if m is None:
        return v.flatten(1).mean(1)
    return (v * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def mse(x: object, ref: object, mask: object = None) -> torch.Tensor:
    """Mean squared error per image (over the mask if given), shape ``(B,)``."""
    xt, rt = _pair(x, ref)
    m = _mask(mask, rt)
    return _masked_mean((xt - rt) ** 2, m).to(torch.float32)


def psnr(x: object, ref: object, mask: object = None, data_range: object = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (thesis appendix), shape ``(B,)``.

    ``PSNR = 10 log10(R^2 / MSE)`` with ``R = max |ref|`` per image (over the mask when given)
    unless ``data_range`` (scalar or one value per image) is passed. A perfect reconstruction gives
    ``inf``.

    >>> import torch
    >>> ref = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    >>> psnr(ref + 0.2, ref).round(decimals=3)  # 10 log10(4 / 0.04)
    tensor([20.])
    >>> psnr(ref + 0.2, ref, data_range=1.0).round(decimals=3)  # 10 log10(1 / 0.04)
    tensor([13.9790])
    """
    xt, rt = _pair(x, ref)
    m = _mask(mask, rt)
    if data_range is None:
        a = rt.abs() if m is None else rt.abs() * m
        r = a.flatten(1).amax(1)
        if bool((r == 0).any()):
            raise ValueError("ref is identically zero (on the mask); pass data_range explicitly")
    else:
        r = _data_range(data_range, rt.shape[0], rt)
    err = _masked_mean((xt - rt) ** 2, m)
    return (10.0 * torch.log10(r**2 / err)).to(torch.float32)


def _symmetric_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Half-sample symmetric padding (``d c b a | a b c d | d c b a``) of the last two dims."""
    h, w = x.shape[-2:]
    if p > h or p > w:
        raise ValueError(f"win_size too large for images of size {h} x {w}")

    def idx(n: int) -> torch.Tensor:
        i = torch.arange(-p, n + p, device=x.device)
        i = torch.where(i < 0, -i - 1, i)
        return torch.where(i >= n, 2 * n - i - 1, i)

    return x.index_select(-2, idx(h)).index_select(-1, idx(w))


def ssim_map(
    x: object,
    ref: object,
    data_range: object = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """The full-size SSIM map, float64 ``(B, C, H, W)``, aligned with the input images.

    Local means/variances are uniform ``win_size``-box statistics over symmetric-padded images
    with sample normalisation N/(N-1), exactly as ``skimage.metrics.structural_similarity``
    computes its map (``full=True``). ``data_range=None`` means R = 1 (thesis constants).
    """
    xt, rt = _pair(x, ref)
    if not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}")
    b, c, h, w = xt.shape
    if h < win_size or w < win_size:
        raise ValueError(f"images of size {h} x {w} are smaller than win_size={win_size}")
    r = torch.ones(b, dtype=torch.float64, device=xt.device)
    if data_range is not None:
        r = _data_range(data_range, b, xt)
    r = r.view(b, 1, 1, 1)
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    p = win_size // 2
    n = win_size * win_size
    cov_norm = n / (n - 1.0)
    stack = torch.cat([xt, rt, xt * xt, rt * rt, xt * rt], dim=1)  # (B, 5C, H, W)
    means = F.avg_pool2d(_symmetric_pad(stack, p), win_size, stride=1)
    ux, uy, uxx, uyy, uxy = means.split(c, dim=1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim(
    x: object,
    ref: object,
    data_range: object = None,
    mask: object = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per image, shape ``(B,)`` (thesis appendix; masked form §2.5.2).

    Without a mask: the mean of :func:`ssim_map` after cropping ``(win_size - 1) // 2`` pixels
    on each side (equal to ``skimage.metrics.structural_similarity`` with ``data_range``, default
    window and constants; for ``(B, C, H, W)`` with C > 1 the channel mean, as skimage's
    ``channel_axis``). With a mask: the mean of the uncropped SSIM map over the mask's pixels.
    ``data_range=None`` means R = 1 (c1 = 1e-4, c2 = 9e-4 as stated in the thesis). The result is
    differentiable with respect to ``x``.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> ref = torch.rand(2, 1, 16, 16, generator=g)
    >>> s = ssim(ref + 0.05 * torch.randn(2, 1, 16, 16, generator=g), ref)
    >>> s.shape, bool((s < 1).all())
    (torch.Size([2]), True)
    """
    smap = ssim_map(x, ref, data_range=data_range, win_size=win_size, k1=k1, k2=k2)
    m = _mask(mask, smap)
    if m is None:
        pad = (win_size - 1) // 2
        smap = smap[..., pad : smap.shape[-2] - pad, pad : smap.shape[-1] - pad]
    return _masked_mean(smap, m).to(torch.float32)
