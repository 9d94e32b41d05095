"""Data-parallel training with :class:`torch.nn.parallel.DistributedDataParallel`.

Launch with ``torchrun --nproc_per_node P -m spinv.cli train CONFIG --out RUN`` (or
``torchrun ... $(which spinv) train ...``): torchrun sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` then joins the
process group with the ``gloo`` backend on CPU or ``nccl`` on CUDA.

Each global minibatch of ``B`` samples is split into ``P`` contiguous shards of ``B / P``
samples (:func:`shard`); every rank computes the mean loss over its shard and DDP averages the
gradients, so the update equals that of one process on the whole batch,
:math:`\\nabla \\frac1B\\sum_{j<B}\\ell_j = \\frac1P\\sum_{r<P}\\nabla\\frac{P}{B}\\sum_{j\\in
\\mathrm{shard}_r}\\ell_j`, up to floating-point summation order.

>>> shard(8, rank=1, world_size=4)
slice(2, 4, None)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Rank of this process, number of processes, local rank and backend (``None``: single)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def shard(batch_size: int, rank: int = 0, world_size: int = 1) -> slice:
    """The contiguous slice of a global batch processed by ``rank`` of ``world_size``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank={rank}, world_size={world_size}: expected 0 <= rank < world_size")
    if batch_size % world_size:
        raise ValueError(
            f"train.batch_size={batch_size} is not divisible by the number of processes "
            f"({world_size}); choose a multiple of {world_size}"
        )
    per = batch_size // world_size
    return slice(rank * per, (rank + 1) * per)


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(
            f"environment WORLD_SIZE={os.environ['WORLD_SIZE']!r}: expected an integer"
        ) from None


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group if launched with ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA).

    ``device`` is the configured device (``auto``/``cpu``/``cuda``...); returns a
    :class:`DistInfo` (single-process when not distributed).
    """
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    use_cuda = torch.cuda.is_available() and device != "cpu" and not device.startswith("mps")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, backend=backend)


def resolve_device(device: str, info: DistInfo) -> torch.device:
    """``auto`` -> ``cuda:<local rank>`` if CUDA is available, else ``cpu``; ``cuda`` under DDP
    -> ``cuda:<local rank>``; anything else as given."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device='cuda' but CUDA is not available")
        index = info.local_rank if info.enabled else torch.cuda.current_device()
        return torch.device("cuda", index)
    try:  # one probe for every kind (mps, cuda:N, xpu, ...): usable here, or one clear error
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as err:
        reason = (str(err).strip() or type(err).__name__).splitlines()[0].split(". ")[0]
        raise ValueError(f"train.device={device!r} is not usable on this machine ({reason}); "
                         "use auto or cpu") from None
    return torch.device(device)


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` when distributed, the model itself otherwise."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The underlying module of a DDP wrapper."""
    return getattr(model, "module", model)


def barrier(info: DistInfo) -> None:
    """Synchronise all ranks (no-op when single-process)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Mean of a scalar over ranks (for logging the global loss)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if info.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def cleanup(info: DistInfo) -> None:
    """Leave the process group, together: a barrier first, so no rank tears down its gloo
    connections while another still uses them (a rank leaving early made its peer abort with
    "terminate called without an active exception")."""
    if info.enabled and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
