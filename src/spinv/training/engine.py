"""The training engine: the one loop that optimises the weights of every learned model.

:func:`fit` minimises an objective over a model's weights with Adam (thesis §2.5.2:
:math:`\\beta_1 = 0.9`, :math:`\\beta_2 = 0.999`, :math:`\\epsilon = 10^{-8}`). Each step ``k``
(0-based) of ``options.steps``:

1. set the learning rate :math:`\\eta_k` (:mod:`spinv.training.schedules`: constant, cosine with
   a floor, torch's recursive cosine, step decay);
2. ``batch = data.batch(k)`` (a data source, :mod:`spinv.training.sources`);
3. ``loss, scalars = objective(model, batch)`` under bf16 autocast if
   ``options.precision == "bf16"`` (default float32); default objective: the mean squared error
   of §2.5.2 on ``(x, y)`` pairs (:mod:`spinv.training.objectives`);
4. backward, optional gradient-norm clipping (``grad_clip``), Adam step on the trainable
   parameters (all, or those whose names start with a prefix in ``options.trainable``);
5. every hook ``hook(model, step)`` (``enforce_constraints()`` of the nonexpansive networks of
   chapter 3 is called automatically when the model has it);
6. a ``log.jsonl`` record ``{"step", "loss", "lr", **scalars, "images_per_s", "elapsed"}`` and
   ``progress(step, total, scalars)``;
7. every ``checkpoint_every`` steps and at the end: ``validate(model)`` (optional) and a
   checkpoint holding weights, optimiser state, global RNG states and the state of the data
   source/objective when they have ``state_dict()``.

A non-finite loss stops the run with :class:`NonFiniteLossError` naming the step; the last
good checkpoint stays. Given a run directory (:func:`spinv.training.rundir.open_run`), a run
opened with ``resume=True`` restores its checkpoint first; because the schedule is a pure
function of the step and every random state is restored, the resumed run ends bit-identical
(on CPU) to an uninterrupted one. ``summary.json`` and ``provenance.json`` are written at the
end. Without a run directory ``fit`` trains in memory (no files). With one, SIGINT (Ctrl-C) or
SIGTERM (a batch scheduler, ``kill``) ends the run cleanly: the step in progress finishes, a
checkpoint and the summary are written, and :class:`TrainingInterrupted` is raised, so a long
training can be stopped at any moment and resumed later without losing more than one step.

Example (train a tiny denoiser on fixed pairs; in a script pass ``run=open_run(...)``)::

    >>> import torch
    >>> from spinv.training.engine import FitOptions, fit
    >>> from spinv.training.sources import FixedPairs
    >>> x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> data = FixedPairs(x, x + 0.1, batch_size=4, seed=4)
    >>> model = torch.nn.Conv2d(1, 1, 3, padding=1)
    >>> result = fit(model, data, FitOptions(steps=20, lr=1e-2))
    >>> len(result.losses), result.losses[-1] < result.losses[0]
    (20, True)

A custom objective (e.g. a VAE's negative ELBO) returns the loss and scalars to log::

    def elbo(model, x):
        nll, kl = model.terms(x)
        return nll + kl, {"nll": nll, "kl": kl}

    fit(vae, source, FitOptions(steps=1000, schedule="cosine", lr_min=5e-5,
                                trainable=("encoder.", "decoder.")), objective=elbo)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from spinv.interruption import TrainingInterrupted
from spinv.training.checkpoint import restore_rng_state, save_checkpoint
from spinv.training.objectives import MeanSquaredError
from spinv.training.rundir import RunDirectory
from spinv.training.schedules import SCHEDULES

__all__ = ["FitOptions", "FitResult", "NonFiniteLossError", "Progress", "TrainingInterrupted",
           "fit"]

Progress = Callable[[int, int, dict], None]
Hook = Callable[[torch.nn.Module, int], None]


class NonFiniteLossError(FloatingPointError, ValueError):
    """The loss became NaN or infinite; the run stops, keeping its last good checkpoint."""


@dataclass(frozen=True)
class FitOptions:
    """Options of :func:`fit` (see the module docstring).

    ``steps``: total optimiser steps (the schedule's :math:`K`); ``stop_at``: stop early at that
    global step (a simulated interruption; resume later); ``lr``, ``schedule``, ``lr_min``
    (cosine floor), ``betas``, ``eps``: Adam and its schedule; ``grad_clip``: max gradient
    norm (``None``: no clipping); ``precision``: ``"float32"`` or ``"bf16"`` (autocast around the
    objective); ``trainable``: parameter-name prefixes to optimise (``None``: all);
    ``checkpoint_every`` (``None``: only at the end), ``keep`` (checkpoints kept),
    ``log_every`` (TensorBoard interval), ``tensorboard``; ``seed``: recorded in
    ``provenance.json`` (the engine draws no random numbers itself).
    """

    steps: int
    lr: float = 1e-3
    schedule: str = "constant"
    lr_min: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = None
    precision: Literal["float32", "bf16"] = "float32"
    trainable: tuple[str, ...] | None = None
    checkpoint_every: int | None = None
    keep: int = 2
    log_every: int = 10
    tensorboard: bool = False
    stop_at: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "keep", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"FitOptions.{name}={v!r}: expected a positive integer")
        for name in ("checkpoint_every", "stop_at"):
            v = getattr(self, name)
            low = 1 if name == "checkpoint_every" else 0
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"FitOptions.{name}={v!r}: expected an integer >= {low} or None")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"FitOptions.lr={self.lr!r}: expected a finite number > 0")
        if not (math.isfinite(self.lr_min) and 0 <= self.lr_min <= self.lr):
            raise ValueError(f"FitOptions.lr_min={self.lr_min!r}: expected 0 <= lr_min <= lr")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"FitOptions.schedule={self.schedule!r}: expected one of "
                             f"{', '.join(SCHEDULES)}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip)
                                               and self.grad_clip > 0):
            raise ValueError(f"FitOptions.grad_clip={self.grad_clip!r}: expected a number > 0")
        if self.precision not in ("float32", "bf16"):
            raise ValueError(f"FitOptions.precision={self.precision!r}: expected 'float32' or "
                             "'bf16'")

    def last_step(self) -> int:
        """The step this session stops at (``min(stop_at, steps)``)."""
        return self.steps if self.stop_at is None else min(self.stop_at, self.steps)


@dataclass
class FitResult:
    """What :func:`fit` returns; ``losses`` covers all steps of the run (read back from
    ``log.jsonl`` for the steps of earlier sessions)."""

    step: int
    losses: list[float]
    final_loss: float | None
    seconds: float  # wall time of this session
    seconds_total: float  # wall time of all sessions of the run
    validation: dict = field(default_factory=dict)
    images_per_s: float | None = None


def trainable_parameters(model: torch.nn.Module,
                         prefixes: Sequence[str] | None) -> list[torch.nn.Parameter]:
    """Parameters of ``model`` whose names start with one of ``prefixes`` (``None``: all, in
    ``named_parameters`` order), ordered by prefix, then in ``named_parameters`` order (the
    order fixes the summation in gradient-norm clipping: ``("encoder.", "log_gamma")`` lists
    the parameters as ``[*encoder.parameters(), log_gamma]`` does); ``ValueError`` if the
    selection is empty."""
    named = list(model.named_parameters())
    if prefixes is None:
        chosen = [p for _, p in named]
    else:
        first = {n: next(i for i, pre in enumerate(prefixes) if n.startswith(pre))
                 for n, _ in named if any(n.startswith(pre) for pre in prefixes)}
        chosen = [p for n, p in sorted(((n, p) for n, p in named if n in first),
                                       key=lambda item: first[item[0]])]
    if not chosen:
        raise ValueError(f"trainable={prefixes!r}: selects no parameter of the model")
    return chosen


def make_optimizer(params: list[torch.nn.Parameter], options: FitOptions) -> torch.optim.Adam:
    """Adam with ``options.lr``, ``betas``, ``eps`` (thesis §2.5.2 defaults)."""
    return torch.optim.Adam(params, lr=options.lr, betas=options.betas, eps=options.eps)


def fit(
    model: torch.nn.Module,
    data: Any,
    options: FitOptions,
    *,
    objective: Callable[[Any, Any], tuple[torch.Tensor, dict]] | None = None,
    hooks: Sequence[Hook] = (),
    run: RunDirectory | None = None,
    progress: Progress | None = None,
    validate: Callable[[torch.nn.Module], dict] | None = None,
    dist: Any = None,
) -> FitResult:
    """Train ``model`` on ``data`` (see the module docstring); returns a :class:`FitResult`.

    ``model`` may be wrapped in ``DistributedDataParallel``; then ``dist`` is the
    :class:`~spinv.training.distributed.DistInfo` and ``data`` yields this rank's shard (only
    rank 0 writes files). ``run`` is a directory opened by :func:`~spinv.training.rundir.open_run`.
    """
    from spinv.training.session import Session

    session = Session(model, data, options, objective or MeanSquaredError(), run, dist)
    session.restore()
    return session.loop(tuple(hooks), progress, validate)


def autocast(precision: str, device: torch.device):
    """``torch.autocast`` with bfloat16 when ``precision == "bf16"``, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def restore_states(ck, model, optimizer, data, objective) -> int:
    """Load a checkpoint into the model, optimiser, RNGs, data source and objective; returns
    its step."""
    inner = getattr(model, "module", model)
    try:
        inner.load_state_dict(ck.model_state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {str(ck.path)!r} does not match the model: {err}") from None
    if ck.optimizer_state is not None:
        try:
            optimizer.load_state_dict(ck.optimizer_state)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise ValueError(f"checkpoint {str(ck.path)!r}: its optimizer state does not fit "
                             f"the model ({type(err).__name__}: {err})") from None
    try:
        restore_rng_state(ck.rng_tensors, ck.metadata.get("rng", {}))
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise ValueError(f"checkpoint {str(ck.path)!r}: field 'rng' is damaged "
                         f"({type(err).__name__}: {err})") from None
    for prefix, owner in (("data/", data), ("objective/", objective)):
        part = {k[len(prefix):]: v for k, v in ck.state.items() if k.startswith(prefix)}
        if part and hasattr(owner, "load_state_dict"):
            try:
                owner.load_state_dict(part)
            except (ValueError, KeyError, TypeError, RuntimeError) as err:
                raise ValueError(f"checkpoint {str(ck.path)!r}: the saved {prefix[:-1]} state "
                                 f"does not fit ({type(err).__name__}: {err})") from None
    return int(ck.metadata["step"])


def extra_state(data: Any, objective: Any) -> dict[str, torch.Tensor]:
    """``state_dict()`` tensors of the data source and objective, prefixed for the checkpoint."""
    out: dict[str, torch.Tensor] = {}
    for prefix, owner in (("data/", data), ("objective/", objective)):
        get = getattr(owner, "state_dict", None)
        if callable(get) and not isinstance(owner, torch.nn.Module):
            out.update({prefix + k: v for k, v in get().items()})
    return out


def checkpoint(run: RunDirectory, model, optimizer, step: int, options: FitOptions,
               extra: dict, state: dict) -> None:
    """Save a checkpoint of the run at ``step``."""
    save_checkpoint(run.path, model, optimizer, step, run.config, extra=extra, keep=options.keep,
                    state=state)


def now() -> tuple[float, float]:
    """``(wall, cpu)`` clocks."""
    return time.perf_counter(), time.process_time()
