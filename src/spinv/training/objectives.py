"""Training objectives: what one minibatch contributes to the loss.

An *objective* is a callable ``objective(model, batch) -> (loss, scalars)``: ``loss`` is a
0-dimensional tensor to minimise, ``scalars`` a dict of extra floats (or 0-d tensors) that the
engine logs next to the loss (e.g. the NLL and KL terms of a VAE's ELBO). ``batch`` is whatever
the data source returned. An objective that keeps random state (its own generator) may expose
``state_dict() -> dict[str, Tensor]`` and ``load_state_dict(dict)``; the engine then stores that
state in the checkpoint so that a resumed run is bit-identical.

The default objective is the empirical risk of thesis §2.5.2,
:math:`\\min_\\theta \\frac1N\\sum_i \\|u_i^* - \\Phi_\\theta(y_i)\\|_2^2`, estimated on a
minibatch by the per-pixel mean squared error :class:`MeanSquaredError` on ``(x, y)`` pairs.

>>> import torch
>>> model = torch.nn.Identity()
>>> loss, scalars = MeanSquaredError()(model, (torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
>>> float(loss), scalars
(1.0, {})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

__all__ = ["MeanSquaredError", "Objective", "reconstruction_loss"]


class Objective(Protocol):
    """``objective(model, batch) -> (loss, scalars)`` (see the module docstring)."""

    def __call__(self, model: Callable, batch: Any) -> tuple[torch.Tensor, dict]: ...


def reconstruction_loss(out: torch.Tensor, target: torch.Tensor,
                        modulus: bool = False) -> torch.Tensor:
    """Mean squared error :math:`\\mathrm{mean}\\,|\\Phi(y) - u^*|^2` (complex-aware).

    For complex errors :math:`e` the square is ``e.real**2 + e.imag**2``, or with ``modulus``
    ``e.abs().square()`` (the form of the chapter-2 experiments: equal in exact arithmetic, it
    differs in the last bits because ``abs`` rounds :math:`\\sqrt{\\cdot}`); for real errors
    both forms give the same bits.
    """
    if out.shape != target.shape:
        raise ValueError(
            f"model output shape {tuple(out.shape)} does not match the ground truth "
            f"{tuple(target.shape)}"
        )
    diff = out - target
    if modulus:
        return diff.abs().square().mean()
    return (diff.real**2 + diff.imag**2).mean() if diff.is_complex() else (diff**2).mean()


class MeanSquaredError:
    """The supervised objective of thesis §2.5.2 on ``(x, y)`` batches: ``model(y)`` against
    ``x``, per-pixel mean of the squared error.

    The model output is cast to float32 (complex64 for complex output) before the error, so
    that under bf16 autocast the loss is still accumulated in float32. ``modulus`` selects the
    complex form of :func:`reconstruction_loss`.
    """

    def __init__(self, modulus: bool = False) -> None:
        self.modulus = bool(modulus)

    def __call__(self, model: Callable, batch: Any) -> tuple[torch.Tensor, dict]:
        x, y = batch
        out = model(y)
        out = out.to(torch.complex64) if out.is_complex() else out.float()
        return reconstruction_loss(out, x, self.modulus), {}

    def __repr__(self) -> str:
        return f"MeanSquaredError(modulus={self.modulus})"
