"""Training/test sets for the sampling experiments (thesis Sec. 1.3.1).

Slices of a bundled dataset (``spinv.data.load_dataset``, e.g. ``"brain-t1"``) or of an array
file are area-downsampled to ``size x size`` for CPU runs; the measurements are simulated as
:math:`y=Fu^*+\\eta` with complex Gaussian white noise :math:`\\eta` (per real component of
standard deviation ``noise``), as in the thesis. The training set is ``n_train`` slices evenly
spread over the training split; the held-out set is the ``val`` and ``test`` splits together
(50 slices for brain-t1), which the learning never sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spinv.bilevel.lower_level import LowerLevel, Regulariser

__all__ = ["load_images", "resize", "training_and_test", "make_lower_level"]


def resize(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """``(N, H, W)`` -> ``(N, 1, size, size)`` float64 by area averaging (exact for integer
    factors, adaptive pooling otherwise), clipped to [0, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"images.shape={tuple(x.shape)}: expected (N, H, W)")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r}: expected an integer >= 8")
    x = x[:, None]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.adaptive_avg_pool2d(x, (size, size))
    return x.clamp(0, 1)


def load_images(data: str, split: str | None = None) -> np.ndarray:
    """Images ``(N, H, W)`` from a bundled dataset name or a ``.npy``/``.npz`` file path."""
    path = Path(data)
    if path.suffix in (".npy", ".npz"):
        if not path.exists():
            raise FileNotFoundError(f"data={data!r}: no such file")
        from spinv.data.npy import read_npy, read_npz

        arr = read_npy(path, "data") if path.suffix == ".npy" else \
            next(iter(read_npz(path, "data").values()))
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 3:
            raise ValueError(f"data={data!r}: expected an array (N, H, W), got {arr.shape}")
        return arr
    from spinv.data import load_dataset

    return load_dataset(data, split)


def _spread(n_avail: int, n: int) -> np.ndarray:
    """``n`` indices evenly spread over the middle 80 % of ``range(n_avail)``."""
    lo, hi = int(0.1 * n_avail), max(int(0.9 * n_avail) - 1, int(0.1 * n_avail))
    return np.unique(np.linspace(lo, hi, n).round().astype(int))


def training_and_test(
    data: str = "brain-t1",
    size: int = 64,
    n_train: int = 7,
    n_test: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truths ``(n_train, 1, size, size)`` and held-out ``(n_test, 1, size, size)``.

    For a bundled dataset the held-out images are its ``val`` + ``test`` splits (disjoint from
    ``train``); for a file, the first images not used for training.
    """
    if n_train < 1:
        raise ValueError(f"n_train={n_train!r}: expected >= 1")
    if Path(data).suffix in (".npy", ".npz"):
        allx = load_images(data)
        idx = _spread(len(allx), n_train)
        rest = np.setdiff1d(np.arange(len(allx)), idx)
        train, test = allx[idx], allx[rest]
    else:
        tr = load_images(data, "train")
        train = tr[_spread(len(tr), n_train)]
        test = np.concatenate([load_images(data, "val"), load_images(data, "test")])
    if n_test is not None:
        test = test[_spread(len(test), n_test)] if n_test < len(test) else test
    return resize(train, size), resize(test, size)


def make_lower_level(
    images: torch.Tensor,
    reg: Regulariser,
    noise: float = 0.02,
    eps: float = 1e-6,
    seed: int = 0,
) -> LowerLevel:
    """:class:`LowerLevel` with simulated noisy fully sampled k-space for ``images``."""
    return LowerLevel.from_images(images, reg, noise=noise, eps=eps, seed=seed)
