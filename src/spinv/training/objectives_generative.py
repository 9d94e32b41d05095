"""Objectives of the generative experiments (see :mod:`spinv.training.objectives`).

- :class:`NegativeELBO`: the VAE's loss, :math:`-\\mathrm{ELBO}` of
  :mod:`spinv.generative.train` (one reparametrised sample drawn from a generator shared with
  the data source); logs the terms ``nll``, ``kl`` and ``nll_per_pixel``;
- :class:`RealPartSquaredError`: :math:`\\mathrm{mean}\\,(\\mathrm{Re}\\,\\Phi(y) - u^*)^2`,
  the loss of the end-to-end MRI baseline (a real image from a complex-valued network output).

>>> import torch
>>> x = torch.ones(1, 1, 2, 2)
>>> loss, _ = RealPartSquaredError()(lambda y: y + 5j, (x, x.to(torch.complex64)))
>>> float(loss)
0.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["NegativeELBO", "RealPartSquaredError"]


class NegativeELBO:
    """``elbo_terms(model, x, generator, stage, beta)["loss"]`` on a batch ``x`` of images
    (:func:`spinv.generative.train.elbo_terms`: :math:`-\\log p(x\\mid z) + \\beta\\,KL` for the
    stages ``mean`` and ``joint``, the NLL alone for ``covariance``)."""

    def __init__(self, stage: str, beta: float, generator: torch.Generator | None) -> None:
        from spinv.generative.train import STAGES

        if stage not in STAGES:
            raise ValueError(f"stage={stage!r}: expected one of {STAGES}")
        self.stage, self.beta, self.generator = stage, float(beta), generator

    def __call__(self, model: Any, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        from spinv.generative.train import elbo_terms

        terms = elbo_terms(model, x, self.generator, self.stage, self.beta)
        return terms["loss"], {k: terms[k] for k in ("nll", "kl", "nll_per_pixel")}

    def __repr__(self) -> str:
        return f"NegativeELBO(stage={self.stage!r}, beta={self.beta})"


class RealPartSquaredError:
    """On ``(x, y)`` batches: ``(model(y).real - x).pow(2).mean()``."""

    def __call__(self, model: Callable, batch: Any) -> tuple[torch.Tensor, dict]:
        x, y = batch
        return (model(y).real - x).pow(2).mean(), {}

    def __repr__(self) -> str:
        return "RealPartSquaredError()"
