"""Simulation pipeline: ground-truth images -> measurements, on the fly and reproducibly.

Supervised training pairs :math:`(u_i^*, y_i)` (thesis, Section 2.5.2) are simulated from
ground-truth images with the forward models of Section 2.5.1:

- ``ct``: :math:`y = -\\mu^{-1}\\log\\max\\{n/N_{in},\\eta\\}`,
  :math:`n\\sim\\mathrm{Pois}(N_{in}e^{-\\mu Ru})` (:func:`spinv.operators.noise.poisson_post_log`;
  ``photons: null`` gives noiseless :math:`y = Ru`);
- ``mri``: :math:`y = S(Fu + \\eta)`, :math:`\\eta` complex white Gaussian
  (:meth:`spinv.operators.SubsampledFourier.measure`); the ground truth is the real image as
  ``complex64``;
- ``denoise``: :math:`y = u + \\sigma n` (:func:`spinv.operators.noise.gaussian_noise`).

Reproducibility: the training sample in slot ``j`` of the global minibatch at ``step`` is a pure
function of ``(seed, step, j)``: the image is entry ``(step*B + j) mod N`` of a permutation of the
``N`` training images drawn afresh for each epoch from ``(seed, epoch)``, and its noise (and
random rotation) come from a generator seeded with ``(seed, step, j)``. A resumed run and a
data-parallel run whose ranks take contiguous slices of the global batch therefore see exactly
the same data as one uninterrupted single-process run. Validation/test measurements are fixed by
``(seed, split)``.

>>> from spinv.training.config import parse_config
>>> import torch
>>> cfg = parse_config({"problem": {"kind": "denoise", "image_size": 16, "noise_sigma": 0.1},
...                     "train": {"batch_size": 2}})
>>> data = TrainingData(cfg, make_operator(cfg.problem), images=torch.rand(5, 1, 16, 16))
>>> x, y = data.batch(3)
>>> x2, y2 = data.batch(3)
>>> x.shape, bool(torch.equal(y, y2))
(torch.Size([2, 1, 16, 16]), True)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spinv.problems import Problem
from spinv.training.config import ExperimentConfig, ProblemConfig

BUNDLED = ("ct-head", "brain-t1", "natural")

_TAGS = {"train": 1, "val": 2, "test": 3, "perm": 4}


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that is a pure function of the integer ``keys`` (numpy SeedSequence).

    >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    True
    """
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(
        2, dtype=np.uint32
    )
    return (int(state[0]) << 31 | int(state[1]) >> 1) & 0x7FFFFFFFFFFFFFFF


def generator_for(*keys: int) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded with :func:`derive_seed` of ``keys``."""
    return torch.Generator().manual_seed(derive_seed(*keys))


# ----------------------------------------------------------------------------- problem


def make_problem(problem: ProblemConfig) -> Problem:
    """The :class:`spinv.problems.Problem` of a config's ``problem`` section (operator, noise
    model, MRI mask drawn from ``problem.mask``)."""
    return Problem.from_config(problem)


def make_operator(problem: ProblemConfig) -> torch.nn.Module:
    """The forward operator of ``problem`` (on the CPU; move it with ``.to(device)``)."""
    return make_problem(problem).operator


# ----------------------------------------------------------------------------- images


def _to_square(x: torch.Tensor, size: int, resize: str = "bilinear") -> torch.Tensor:
    """Centre-crop ``(N, 1, H, W)`` to a square and resize to ``size`` (antialiased bilinear, or
    area averaging when ``resize="area"`` and the image shrinks)."""
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[..., top : top + s, left : left + s]
    if s != size and resize == "area" and s > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    elif s != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=s > size,
                          align_corners=False)
    return x.clamp(0.0, 1.0).contiguous()


def _as_stack(arr: Any, where: str) -> torch.Tensor:
    if isinstance(arr, (list, tuple)):
        arr = np.stack([np.asarray(a) for a in arr])
    t = torch.as_tensor(np.asarray(arr))
    if t.is_complex():
        t = t.abs()
    if t.ndim == 2:
        t = t[None]
    if t.ndim == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 3:
        raise ValueError(f"{where}: expected images of shape (N, H, W), got {tuple(t.shape)}")
    return t.float()[:, None]


@functools.lru_cache(maxsize=16)
def _load_cached(dataset: str, split: str, image_size: int,
                 resize: str = "bilinear") -> torch.Tensor:
    if dataset in BUNDLED:
        from spinv.data import load_dataset

        arr = load_dataset(dataset, split)
        return _to_square(_as_stack(arr, f"dataset {dataset!r}"), image_size, resize)
    path = Path(dataset).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"data.dataset={dataset!r}: neither a bundled dataset ({', '.join(BUNDLED)}) "
            "nor an existing file or folder"
        )
    from spinv.data.io import load_images

    # load_images scales the whole stack to [0, 1] (min-max over the stack)
    imgs = _as_stack(load_images(str(path)), f"images in {str(path)!r}")
    return _to_square(imgs, image_size, resize)


def load_images_for(dataset: str, split: str, image_size: int, val_size: int = 0,
                    resize: str = "bilinear") -> torch.Tensor:
    """Ground-truth images ``(N, 1, n, n)`` float32 in [0, 1] of a bundled dataset split or of a
    user's path (file or folder read by :func:`spinv.data.io.load_images`).

    For a path, ``train`` is all images but the last ``val_size``, ``val`` the last
    ``val_size``, and ``test`` all of them (a user's folder is typically a held-out test set).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}: expected 'train', 'val' or 'test'")
    if dataset in BUNDLED:
        return _load_cached(dataset, split, image_size, resize)
    imgs = _load_cached(os.fspath(dataset), "all", image_size, resize)
    if split == "test":
        return imgs
    n = imgs.shape[0]
    cut = n - min(val_size, n - 1) if split in ("train", "val") else n
    return imgs[:cut] if split == "train" else imgs[cut:]


# ----------------------------------------------------------------------------- rotations


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images ``(B, C, H, W)`` by ``degrees`` (counter-clockwise) about the centre,
    with :func:`spinv.data.transforms.rotate`."""
    from spinv.data.transforms import rotate as _rotate

    return _rotate(x, float(degrees))


# ----------------------------------------------------------------------------- simulation


class Simulator:
    """Draws measurements ``y`` from ground truth ``x`` for the configured problem, through
    :meth:`spinv.problems.Problem.simulate` of :func:`make_problem` acting with ``operator``
    (which may already sit on the training device).

    :meth:`measure` takes one generator per sample, so sample ``j``'s noise does not depend on
    which other samples share its batch (or its rank in data-parallel training).
    """

    def __init__(self, problem: ProblemConfig, operator: torch.nn.Module) -> None:
        self.problem = problem
        self.operator = operator
        self.setup = make_problem(problem).with_operator(operator)
        self.mu = self.setup.noise.mu if problem.kind == "ct" else None

    def ground_truth(self, x: torch.Tensor) -> torch.Tensor:
        """The target the model must reproduce (complex64 for MRI, else ``x``)."""
        return self.setup.ground_truth(x)

    @torch.no_grad()
    def measure(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Noisy measurements of the batch ``x`` (``len(generators) == x.shape[0]``)."""
        if len(generators) != x.shape[0]:
            raise ValueError(
                f"generators: got {len(generators)} for a batch of {x.shape[0]} images"
            )
        return self.setup.simulate(self.ground_truth(x), generator=list(generators))


def _random_rotations(x: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    angles = [float(torch.rand((), generator=g)) * 360.0 for g in gens]
    return torch.cat([rotate(x[j : j + 1], a) for j, a in enumerate(angles)])


def zoom_out(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` ``(B, C, n, n)`` shrunk about the centre by ``factor`` in (0, 1] (antialiased
    bilinear resampling to ``round(factor n)`` pixels) and padded with zeros to ``n``.

    >>> zoom_out(torch.ones(1, 1, 8, 8), 0.5)[0, 0].sum().item()
    16.0
    """
    n = x.shape[-1]
    m = max(1, round(factor * n))
    if m == n:
        return x
    small = F.interpolate(x, size=(m, m), mode="bilinear", antialias=True, align_corners=False)
    top = (n - m) // 2
    return F.pad(small, (top, n - m - top, top, n - m - top))


def _random_zooms(x: torch.Tensor, gens: list[torch.Generator], lowest: float) -> torch.Tensor:
    factors = [lowest + (1.0 - lowest) * float(torch.rand((), generator=g)) for g in gens]
    return torch.cat([zoom_out(x[j : j + 1], f) for j, f in enumerate(factors)])


def fixed_set(
    images: torch.Tensor,
    simulator: Simulator,
    seed: int,
    split: str,
    rotation: str | float | None = None,
    offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed ``(ground truth, measurements)`` for ``images`` (validation/test): image ``j``'s
    noise and random rotation come from ``(seed, split, offset + j)`` (``offset``: index of the
    first image when a set is processed in chunks); ``rotation`` is ``None``, ``"random"`` or an
    angle in degrees."""
    dev = simulator_device(simulator)
    tag = _TAGS[split]
    gens = [generator_for(seed, tag, offset + j) for j in range(images.shape[0])]
    x = images
    if rotation == "random":
        x = _random_rotations(x, gens)
    elif rotation is not None:
        x = rotate(x, float(rotation))
    x = x.to(dev)
    return simulator.ground_truth(x), simulator.measure(x, gens)


def simulator_device(simulator: Simulator) -> torch.device:
    for t in list(simulator.operator.parameters()) + list(simulator.operator.buffers()):
        return t.device
    return torch.device("cpu")


class TrainingData:
    """Training minibatches and the fixed validation set of an experiment.

    ``images`` (optional) overrides the configured dataset with ``(N, 1, n, n)`` ground truth.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        operator: torch.nn.Module,
        images: torch.Tensor | None = None,
        val_images: torch.Tensor | None = None,
    ) -> None:
        self.cfg = cfg
        self.simulator = Simulator(cfg.problem, operator)
        d, n = cfg.data, cfg.problem.image_size
        if images is None:
            images = load_images_for(d.dataset, "train", n, d.val_size, d.resize)
        if val_images is None:
            val_images = (
                load_images_for(d.dataset, "val", n, d.val_size, d.resize)[: d.val_size]
                if d.val_size > 0 else images[:0]
            )
        if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[-2:]) != (n, n):
            raise ValueError(
                f"images: expected shape (N, 1, {n}, {n}), got {tuple(images.shape)}"
            )
        if d.n_train is not None:
            if d.n_train > images.shape[0]:
                raise ValueError(
                    f"data.n_train={d.n_train}: only {images.shape[0]} training images in "
                    f"{d.dataset!r}"
                )
            images = images[: d.n_train]
        if images.shape[0] == 0:
            raise ValueError(f"data.dataset={d.dataset!r}: no training images")
        self.images = images.float().cpu()
        self.val_images = val_images.float().cpu()
        self.seed = cfg.train.seed
        self.batch_size = cfg.train.batch_size
        self._perm_cache: dict[int, torch.Tensor] = {}

    @property
    def n_train(self) -> int:
        return int(self.images.shape[0])

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            g = generator_for(self.seed, _TAGS["perm"], epoch)
            self._perm_cache[epoch] = torch.randperm(self.n_train, generator=g)
        return self._perm_cache[epoch]

    def indices(self, step: int) -> list[int]:
        """Training-image indices of the global minibatch at ``step`` (pure in seed, step)."""
        out = []
        for j in range(self.batch_size):
            g = step * self.batch_size + j
            out.append(int(self._perm(g // self.n_train)[g % self.n_train]))
        return out

    def batch(
        self, step: int, rank: int = 0, world_size: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ground truth, measurements)`` of this rank's slice of the global batch at ``step``,
        on the operator's device."""
        from spinv.training.distributed import shard

        sl = shard(self.batch_size, rank, world_size)
        idx = self.indices(step)[sl]
        slots = range(self.batch_size)[sl]
        gens = [generator_for(self.seed, _TAGS["train"], step, j) for j in slots]
        x = self.images[idx]
        if self.cfg.data.rotate_train:
            x = _random_rotations(x, gens)
        if self.cfg.data.zoom_train is not None:
            x = _random_zooms(x, gens, self.cfg.data.zoom_train)
        x = x.to(simulator_device(self.simulator))
        return self.simulator.ground_truth(x), self.simulator.measure(x, gens)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed validation pairs (measurement noise fixed by the seed)."""
        return fixed_set(self.val_images, self.simulator, self.seed, "val")

    def describe(self) -> dict:
        """The data split, for ``provenance.json`` of the run (see :mod:`spinv.training.engine`)."""
        d = self.cfg.data
        return {"source": "simulated on the fly", "dataset": d.dataset, "train_split": "train",
                "n_train": self.n_train, "val_split": "val", "n_val": int(len(self.val_images)),
                "batch_size": self.batch_size, "seed": self.seed,
                "rotate_train": d.rotate_train, "zoom_train": d.zoom_train, "resize": d.resize}
