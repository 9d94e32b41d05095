"""Data sources of the chapter-3 and generative experiments (see :mod:`spinv.training.sources`).

Each source draws its minibatch of step ``k`` from one CPU generator seeded with ``seed``, in
the order the experiments always have, so that training on the engine
(:func:`spinv.training.engine.fit`) gives the numbers of the loops it replaced. The generator
state and the next step travel in the checkpoint (``state_dict`` / ``load_state_dict``), so a
resumed run draws the same minibatches as an uninterrupted one:

- :class:`NoisyCrops`: random ``crop x crop`` patches of training images with fresh Gaussian
  noise, :math:`y = u + \\sigma n` (denoisers of thesis §3.3, Eq. 3.5-3.6): ``(clean, noisy)``;
- :class:`FullBatch`: the same batch at every step (full-batch fits such as Fig. 3.1);
- :class:`AugmentedSlices`: augmented slices of :class:`spinv.generative.train.SliceSampler`,
  alone (VAE training) or with simulated measurements ``(x, problem.simulate(x))``
  (the end-to-end baseline).

>>> import torch
>>> images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
>>> src = NoisyCrops(images, sigma=0.1, batch_size=2, crop=4, seed=0)
>>> clean, noisy = src.batch(0)
>>> clean.shape, bool((noisy - clean).abs().max() > 0)
(torch.Size([2, 1, 4, 4]), True)
"""

from __future__ import annotations

from typing import Any

import torch

from spinv.training.sources import SeededSource

__all__ = ["AugmentedSlices", "FullBatch", "NoisyCrops", "SeededSource", "random_crops"]


def random_crops(images: torch.Tensor, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random ``size x size`` crops of ``images`` ``(N, C, H, W)``: image indices, then
    top and left corners, each drawn as one ``randint`` from ``gen``."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop={size}: expected at most the image size {min(h, w)}")
    idx = torch.randint(images.shape[0], (n,), generator=gen)
    top = torch.randint(h - size + 1, (n,), generator=gen)
    left = torch.randint(w - size + 1, (n,), generator=gen)
    return torch.stack([images[i, :, t:t + size, l_:l_ + size]
                        for i, t, l_ in zip(idx.tolist(), top.tolist(), left.tolist(),
                                            strict=True)])


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return value


class NoisyCrops(SeededSource):
    """``(clean, noisy)`` pairs: :func:`random_crops` of ``images`` and
    :math:`y = u + \\sigma n` with :math:`n` drawn from the same generator
    (:func:`spinv.problems.denoising_problem`); drawn on the CPU, moved to ``images``' device."""

    def __init__(self, images: torch.Tensor, sigma: float, batch_size: int, crop: int,
                 seed: int) -> None:
        from spinv.problems import denoising_problem

        super().__init__(seed)
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError("images: expected a tensor (N, C, H, W)")
        self.batch_size = _positive_int("batch_size", batch_size)
        self.crop = _positive_int("crop", crop)
        if self.crop > min(images.shape[-2:]):
            raise ValueError(f"crop={crop}: expected at most the image size "
                             f"{min(images.shape[-2:])}")
        self.device = images.device
        self.images = images.detach().cpu()
        self.problem = denoising_problem(sigma)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.advance(step)
        clean = random_crops(self.images, self.batch_size, self.crop, self.generator)
        noisy = self.problem.simulate(clean, generator=self.generator)
        return clean.to(self.device), noisy.to(self.device)

    def describe(self) -> dict:
        return {"source": "noisy crops", "n": int(self.images.shape[0]),
                "batch_size": self.batch_size, "crop": self.crop,
                "sigma": self.problem.noise.sigma, "seed": self.seed}


class FullBatch:
    """The same ``batch`` at every step (no randomness, no state)."""

    def __init__(self, batch: Any, name: str = "full batch") -> None:
        self.value, self.name = batch, name

    def batch(self, step: int) -> Any:
        return self.value

    def describe(self) -> dict:
        first = self.value[0] if isinstance(self.value, (tuple, list)) else self.value
        return {"source": self.name, "n": int(first.shape[0])}


class AugmentedSlices(SeededSource):
    """``sampler.sample(batch_size, generator)`` (augmented slices
    :class:`~spinv.generative.train.SliceSampler`); with a ``problem`` the pair
    ``(x, problem.simulate(x, generator=generator))``. The generator is public: an objective
    that draws too (the VAE's reparametrisation) shares it, as the loops it replaced did."""

    def __init__(self, sampler: Any, batch_size: int, seed: int, problem: Any = None) -> None:
        super().__init__(seed)
        self.sampler = sampler
        self.batch_size = _positive_int("batch_size", batch_size)
        self.problem = problem

    def batch(self, step: int) -> Any:
        self.advance(step)
        x = self.sampler.sample(self.batch_size, self.generator)
        if self.problem is None:
            return x
        return x, self.problem.simulate(x, generator=self.generator)

    def describe(self) -> dict:
        return {"source": "augmented slices", "n": int(self.sampler.hr.shape[0]),
                "size": self.sampler.size, "zoom": list(self.sampler.zoom),
                "flip": self.sampler.flip, "batch_size": self.batch_size, "seed": self.seed,
                "problem": None if self.problem is None else self.problem.describe()}
