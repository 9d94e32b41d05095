"""Data sources of the training engine: where the minibatch of each step comes from.

A *data source* has one method, ``batch(step) -> batch`` (any object the objective understands;
for supervised reconstruction ``(x, y)``: ground truth and measurements). A source must give the
same batch for the same step after a resume: either ``batch`` is a pure function of ``step``
(:class:`spinv.training.data.TrainingData`: simulated on the fly from ``(seed, step)``), or the
source exposes ``state_dict() -> dict[str, Tensor]`` and ``load_state_dict(dict)``, which the
engine stores in every checkpoint (:class:`FixedPairs`: the state of its index generator).
Optionally ``describe() -> dict`` (JSON-able) says what the data are; the engine records it in
``provenance.json``.

:class:`FixedPairs` draws minibatches of pre-simulated pairs exactly as the chapter-2 experiments
always have: ``idx = torch.randint(0, N, (B,), generator=g)`` from one CPU generator seeded with
``seed`` (the experiments pass their ``seed + 4``), so that every model trained with the same
seed sees the same minibatches.

>>> import torch
>>> x, y = torch.arange(5.0).view(5, 1, 1, 1), -torch.arange(5.0).view(5, 1, 1, 1)
>>> src = FixedPairs(x, y, batch_size=2, seed=4)
>>> xb, yb = src.batch(0)
>>> g = torch.Generator().manual_seed(4)
>>> bool(torch.equal(xb, x[torch.randint(0, 5, (2,), generator=g)])), bool(torch.equal(yb, -xb))
(True, True)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["DataSource", "FixedPairs", "RankShard", "SeededSource"]


@runtime_checkable
class DataSource(Protocol):
    """Anything with ``batch(step)`` (see the module docstring)."""

    def batch(self, step: int) -> Any: ...


class SeededSource:
    """Base of a source whose step ``k`` consumes draws of one CPU generator seeded with
    ``seed``: steps come in order (:meth:`advance`), and the generator state and the next step
    are the checkpointed state (:class:`FixedPairs` and the image sources of
    :mod:`spinv.training.sources_images` build on it)."""

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed={seed!r}: expected an integer")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.position = 0  # the next step

    def advance(self, step: int) -> None:
        """Check that ``step`` is the next step and move on."""
        if step != self.position:
            raise ValueError(
                f"{type(self).__name__}.batch({step}): steps must be requested in order; the "
                f"next step is {self.position} (restore a checkpoint's state to resume)"
            )
        self.position += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state(),
                "position": torch.tensor([self.position], dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key in ("generator", "position"):
            if key not in state:
                raise ValueError(f"{type(self).__name__} state: missing {key!r}")
        self.generator.set_state(state["generator"].to(torch.uint8).cpu())
        self.position = int(state["position"][0])


class FixedPairs(SeededSource):
    """Minibatches of fixed pairs ``(x[idx], y[idx])`` with ``idx`` drawn from a seeded
    generator (module docstring).

    ``x`` and ``y`` share their first dimension ``N`` and may live on any device; the indices are
    drawn on the CPU and moved there. Steps must be requested in order; a request for a later
    step first draws (and discards) the skipped minibatches, so the source can also be
    fast-forwarded to a step without a saved state.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 name: str = "fixed pairs") -> None:
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError("FixedPairs: x and y must be tensors")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"FixedPairs: x has {x.shape[0]} and y {y.shape[0]} samples; expected the same "
                "positive number"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
        super().__init__(seed)
        self.x, self.y = x, y
        self.batch_size, self.name = batch_size, name

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def indices(self, step: int) -> torch.Tensor:
        """The (CPU) indices of the minibatch of ``step``; advances the generator."""
        if step < self.position:
            raise ValueError(
                f"FixedPairs.batch({step}): steps must be requested in order; the next step is "
                f"{self.position} (restore a checkpoint's state to go back)"
            )
        while self.position < step:  # fast-forward over skipped steps
            torch.randint(0, len(self), (self.batch_size,), generator=self.generator)
            self.position += 1
        self.position += 1
        return torch.randint(0, len(self), (self.batch_size,), generator=self.generator)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices(step).to(self.x.device)
        return self.x[idx], self.y[idx]

    def describe(self) -> dict:
        return {"source": self.name, "n": len(self), "batch_size": self.batch_size,
                "seed": self.seed, "x_shape": list(self.x.shape), "y_shape": list(self.y.shape),
                "y_dtype": str(self.y.dtype).replace("torch.", "")}


class RankShard:
    """This rank's share of a source whose ``batch(step, rank, world_size)`` shards the global
    batch (data-parallel training, :mod:`spinv.training.distributed`)."""

    def __init__(self, source: Any, rank: int, world_size: int) -> None:
        self.source, self.rank, self.world_size = source, rank, world_size

    def batch(self, step: int) -> Any:
        return self.source.batch(step, self.rank, self.world_size)

    def describe(self) -> dict:
        inner = getattr(self.source, "describe", None)
        out = inner() if callable(inner) else {"source": type(self.source).__name__}
        return {**out, "rank": self.rank, "world_size": self.world_size}
