"""Synthetic phantoms: the (modified) Shepp–Logan head phantom and random ellipses.

Both are sums of indicator functions of ellipses on the square [-1, 1]^2, sampled at pixel
centres: an ellipse with value ``v``, half-axes ``(a, b)``, centre ``(x0, y0)`` and rotation ``phi``
(counter-clockwise, in radians) adds ``v`` where

    (( cos(phi) (x - x0) + sin(phi) (y - y0)) / a)^2
  + ((-sin(phi) (x - x0) + cos(phi) (y - y0)) / b)^2 <= 1,

with ``x`` growing to the right (columns) and ``y`` growing upwards (row 0 is ``y`` near 1).

* :func:`shepp_logan`: the 10 ellipses of Shepp & Logan (1974) with the "modified" intensities
  of Toft (1996) that give better visual contrast (values in [0, 1]); ``modified=False`` gives the
  original intensities (values in [0, 2]).
* :func:`random_ellipses`: the training phantoms of Adler & Öktem's learned primal–dual
  (2018): a Poisson(``n_ellipses``) number of ellipses with value ``(U - 1/2) E_{0.4}``, half-axes
  ``0.2 E_1`` each, centre uniform in [-1, 1]^2 (in [-1/2, 1/2]^2 if ``interior``) and angle
  uniform in [0, 2 pi), where U is uniform on [0, 1] and E_s exponential with mean s. The raw sum
  can be negative; ``normalize=True`` maps each image affinely onto [0, 1].

>>> x = shepp_logan(64)
>>> x.shape, x.dtype, float(x.min()), float(x.max())
(torch.Size([1, 1, 64, 64]), torch.float32, 0.0, 1.0)
>>> y = random_ellipses(32, batch=2, seed=0)
>>> y.shape, bool(torch.equal(y, random_ellipses(32, batch=2, seed=0)))
(torch.Size([2, 1, 32, 32]), True)
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["ellipse_phantom", "shepp_logan", "random_ellipses"]

# (value, a, b, x0, y0, phi in degrees); modified values from Toft (1996).
_SHEPP_LOGAN = [
    (2.00, 0.6900, 0.9200, 0.00, 0.0000, 0.0),
    (-0.98, 0.6624, 0.8740, 0.00, -0.0184, 0.0),
    (-0.02, 0.1100, 0.3100, 0.22, 0.0000, -18.0),
    (-0.02, 0.1600, 0.4100, -0.22, 0.0000, 18.0),
    (0.01, 0.2100, 0.2500, 0.00, 0.3500, 0.0),
    (0.01, 0.0460, 0.0460, 0.00, 0.1000, 0.0),
    (0.01, 0.0460, 0.0460, 0.00, -0.1000, 0.0),
    (0.01, 0.0460, 0.0230, -0.08, -0.6050, 0.0),
    (0.01, 0.0230, 0.0230, 0.00, -0.6060, 0.0),
    (0.01, 0.0230, 0.0460, 0.06, -0.6050, 0.0),
]
_MODIFIED_VALUES = [1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


def _size(size: object) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be a positive int or a pair (H, W) of them, got {size!r}")
    return int(size[0]), int(size[1])


def ellipse_phantom(
    size: int | tuple[int, int],
    ellipses: torch.Tensor | np.ndarray | list,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sum of ellipse indicators, ``(1, 1, H, W)``; ``ellipses`` rows are
    ``(value, a, b, x0, y0, phi_radians)`` (see the module docstring for the convention)."""
    h, w = _size(size)
    e = torch.as_tensor(np.asarray(ellipses, dtype=np.float64), device=device)
    if e.ndim != 2 or e.shape[1] != 6:
        raise ValueError(f"ellipses must have shape (n, 6), got {tuple(e.shape)}")
    if bool((e[:, 1:3] <= 0).any()):
        raise ValueError("ellipse half-axes a, b must be positive")
    ys = 1.0 - (2.0 * torch.arange(h, device=device, dtype=torch.float64) + 1.0) / h
    xs = (2.0 * torch.arange(w, device=device, dtype=torch.float64) + 1.0) / w - 1.0
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    out = torch.zeros(h, w, dtype=torch.float64, device=device)
    for v, a, b, x0, y0, phi in e:
        c, s = torch.cos(phi), torch.sin(phi)
        dx, dy = xx - x0, yy - y0
        u = (c * dx + s * dy) / a
        t = (-s * dx + c * dy) / b
        out += v * ((u * u + t * t) <= 1.0)
    return out.to(dtype)[None, None]


def shepp_logan(
    size: int | tuple[int, int] = 256,
    modified: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The Shepp–Logan phantom on ``size`` pixels (int or (H, W)), shape ``(1, 1, H, W)``.

    ``modified=True`` (default) uses Toft's contrast-enhanced intensities, values in [0, 1].
    """
    rows = []
    for k, (v, a, b, x0, y0, phi) in enumerate(_SHEPP_LOGAN):
        val = _MODIFIED_VALUES[k] if modified else v
        rows.append((val, a, b, x0, y0, math.radians(phi)))
    x = ellipse_phantom(size, rows, device=device, dtype=torch.float64)
    # remove round-off of the sums (e.g. 1 - 0.8 - 0.2) so that exact zeros stay zeros
    x = torch.round(x * 1e6) / 1e6
    return x.to(dtype)


def _rng(seed: int | torch.Generator | None) -> np.random.Generator:
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=seed))
    elif seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def random_ellipses(
    size: int | tuple[int, int] = 128,
    batch: int = 1,
    n_ellipses: float = 50.0,
    interior: bool = False,
    normalize: bool = False,
    seed: int | torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random-ellipse phantoms of Adler & Öktem (2018), shape ``(batch, 1, H, W)``.

    The number of ellipses per image is Poisson(``n_ellipses``); parameters as in the module
    docstring. Deterministic for a given ``seed`` (int or ``torch.Generator``).
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if not (isinstance(n_ellipses, (int, float)) and n_ellipses > 0):
        raise ValueError(f"n_ellipses must be a positive number, got {n_ellipses!r}")
    rng = _rng(seed)
    spread = 0.5 if interior else 1.0
    images = []
    for _ in range(batch):
        n = max(int(rng.poisson(n_ellipses)), 1)
        value = (rng.random(n) - 0.5) * rng.exponential(0.4, n)
        a = rng.exponential(1.0, n) * 0.2
        b = rng.exponential(1.0, n) * 0.2
        x0 = (2.0 * rng.random(n) - 1.0) * spread
        y0 = (2.0 * rng.random(n) - 1.0) * spread
        phi = rng.random(n) * 2.0 * np.pi
        rows = np.stack([value, np.maximum(a, 1e-6), np.maximum(b, 1e-6), x0, y0, phi], 1)
        img = ellipse_phantom(size, rows, device=device, dtype=torch.float64)
        if normalize:
            lo, hi = img.min(), img.max()
            img = (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)
        images.append(img)
    return torch.cat(images).to(dtype)
