"""One training session of :func:`spinv.training.engine.fit` (the loop's state and its steps).

Kept apart from :mod:`spinv.training.engine` (the public API and its options) so that each
function stays short; see the engine's docstring for the algorithm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

from spinv.training.engine import (
    FitOptions,
    FitResult,
    NonFiniteLossError,
    TrainingInterrupted,
    autocast,
    checkpoint,
    extra_state,
    make_optimizer,
    now,
    restore_states,
    trainable_parameters,
)
from spinv.training.logging import JsonlLogger, TensorBoard, read_log
from spinv.training.rundir import RunDirectory, python_info, source_commit
from spinv.training.schedules import learning_rate


def _batch_size(data: Any) -> int | None:
    size = getattr(data, "batch_size", None)
    if size is None:
        size = getattr(getattr(data, "source", None), "batch_size", None)
    return size if isinstance(size, int) else None


def _floats(scalars: dict) -> dict:
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            for k, v in scalars.items()}


class StopRequest:
    """Records the first SIGINT/SIGTERM instead of dying mid-step (see :func:`stop_on_signals`)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[StopRequest | None]:
    """While active, SIGINT and SIGTERM only set a flag that the loop checks after each step
    (only in the main thread, where Python delivers signals); the previous handlers return on
    exit."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield None
        return
    request = StopRequest()
    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Session:
    """State of one call of :func:`~spinv.training.engine.fit`."""

    def __init__(self, model: torch.nn.Module, data: Any, options: FitOptions, objective: Any,
                 run: RunDirectory | None, dist: Any) -> None:
        if not isinstance(options, FitOptions):
            raise TypeError(f"options: expected FitOptions, got {type(options).__name__}")
        self.model, self.inner = model, getattr(model, "module", model)
        self.data, self.options, self.objective, self.run, self.dist = (
            data, options, objective, run, dist)
        self.is_main = dist is None or dist.is_main
        self.params = trainable_parameters(self.inner, options.trainable)
        self.optimizer = make_optimizer(self.params, options)
        self.device = next((p.device for p in self.params), torch.device("cpu"))
        self.start = 0
        self.previous = {"seconds_total": 0.0, "cpu_seconds_total": 0.0, "sessions": 0}
        self.validation: dict = {}

    def restore(self) -> None:
        """Resume from the run's checkpoint, if it has one."""
        ck = self.run.checkpoint if self.run is not None else None
        if ck is None:
            return
        self.start = restore_states(ck, self.model, self.optimizer, self.data, self.objective)
        extra = ck.metadata.get("extra") or {}
        for key in self.previous:
            self.previous[key] = extra.get(key, self.previous[key])
        self.validation = extra.get("validation") or {}

    # ------------------------------------------------------------------------- one step

    def step(self, k: int, hooks: tuple) -> tuple[float, dict, float]:
        """Optimiser step ``k``: returns ``(loss, scalars, lr)`` (loss averaged over ranks)."""
        o = self.options
        lr = learning_rate(o.lr, o.schedule, k, o.steps, o.lr_min)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.data.batch(k)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(o.precision, self.device):
            loss, scalars = self.objective(self.model, batch)
        loss.backward()
        if o.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, o.grad_clip)
        self.optimizer.step()
        enforce = getattr(self.inner, "enforce_constraints", None)
        if callable(enforce):
            with torch.no_grad():
                enforce()
        for hook in hooks:
            hook(self.inner, k + 1)
        value = float(loss.detach())
        if self.dist is not None:
            from spinv.training.distributed import all_reduce_mean

            value = all_reduce_mean(value, self.dist)
        if not math.isfinite(value):
            where = "" if self.run is None else f" of {str(self.run.path)!r}"
            raise NonFiniteLossError(
                f"training{where}: the loss became {value} at step {k + 1}; stopped (the last "
                "good checkpoint is kept): lower the learning rate or clip the gradients"
            )
        return value, _floats(scalars), lr

    # ------------------------------------------------------------------------- the loop

    def loop(self, hooks: tuple, progress, validate) -> FitResult:
        o, stop = self.options, self.options.last_step()
        frozen = self._freeze()
        logger = tboard = None
        if self.run is not None and self.is_main:
            logger = JsonlLogger(self.run.path / "log.jsonl",
                                 resume_step=self.start if self.run.resuming else None)
            tboard = TensorBoard(self.run.path / "tensorboard", o.tensorboard)
            self._provenance(0.0, 0.0)
        history = ([r["loss"] for r in read_log(self.run.path / "log.jsonl") if "loss" in r]
                   if self.run is not None and self.run.resuming else [])
        (t0, c0), batch = now(), _batch_size(self.data)
        k = self.start
        self.model.train()
        stack = contextlib.ExitStack()
        request = stack.enter_context(stop_on_signals(
            self.run is not None and self.is_main and self.dist is None))
        try:
            while k < stop:
                ts = now()[0]
                loss, scalars, lr = self.step(k, hooks)
                k += 1
                history.append(loss)
                dt = now()[0] - ts
                rate = (batch if batch else 1) / dt if dt > 0 else float("inf")
                rec = {"step": k, "loss": loss, "lr": lr, **scalars,
                       ("images_per_s" if batch else "steps_per_s"): rate,
                       "elapsed": now()[0] - t0}
                if logger is not None:
                    logger.write(rec)
                    if k % o.log_every == 0 or k == stop:
                        tboard.scalars(k, rec)
                if progress is not None and self.is_main:
                    progress(k, o.steps, rec)
                interrupted = request is not None and request.signum is not None
                if (o.checkpoint_every and k % o.checkpoint_every == 0) or k == stop \
                        or interrupted:
                    self._checkpoint(k, validate, logger, tboard, now()[0] - t0, now()[1] - c0)
                if interrupted:
                    break
        finally:
            stack.close()
            for p in frozen:
                p.requires_grad_(True)
            if logger is not None:
                logger.close()
                tboard.close()
        result = self._finish(k, history, now()[0] - t0, now()[1] - c0, batch,
                              None if request is None else request.signum)
        if request is not None and request.signum is not None:
            name = signal.Signals(request.signum).name
            raise TrainingInterrupted(
                f"{name}: training of {str(self.run.path)!r} stopped at step {k}/{o.steps} with a "
                "checkpoint; continue with the same command and --resume",
                step=k, signal_name=name, exit_code=128 + request.signum)
        return result

    def _freeze(self) -> list[torch.nn.Parameter]:
        if self.options.trainable is None:
            return []
        chosen = {id(p) for p in self.params}
        frozen = [p for p in self.inner.parameters() if id(p) not in chosen and p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        return frozen

    def _totals(self, seconds: float, cpu: float) -> dict:
        return {"seconds_total": self.previous["seconds_total"] + seconds,
                "cpu_seconds_total": self.previous["cpu_seconds_total"] + cpu,
                "sessions": self.previous["sessions"] + 1}

    def _checkpoint(self, k: int, validate, logger, tboard, seconds: float, cpu: float) -> None:
        if self.is_main and validate is not None:
            was = self.inner.training
            self.validation = validate(self.inner) or {}
            self.inner.train(was)
            if self.validation and logger is not None:
                logger.write({"step": k, **self.validation})
                tboard.scalars(k, self.validation)
        if self.is_main and self.run is not None:
            extra = {"validation": self.validation, **self._totals(seconds, cpu)}
            checkpoint(self.run, self.model, self.optimizer, k, self.options, extra,
                       extra_state(self.data, self.objective))
        if self.dist is not None:
            from spinv.training.distributed import barrier

            barrier(self.dist)

    def _finish(self, k: int, history: list, seconds: float, cpu: float,
                batch: int | None, signum: int | None = None) -> FitResult:
        done = k - self.start
        totals = self._totals(seconds, cpu)
        rate = done * batch / seconds if batch and done and seconds > 0 else None
        result = FitResult(step=k, losses=history, final_loss=history[-1] if history else None,
                           seconds=seconds, seconds_total=totals["seconds_total"],
                           validation=self.validation, images_per_s=rate)
        if self.run is not None and self.is_main:
            self.run.write_json("summary.json", {
                "step": k, "steps": self.options.steps, "final_loss": result.final_loss,
                "images_per_s": rate, "seconds_this_session": seconds, **totals,
                "world_size": getattr(self.dist, "world_size", 1), "device": str(self.device),
                "torch_threads": torch.get_num_threads(), "precision": self.options.precision,
                "validation": self.validation,
                "interrupted": None if signum is None else signal.Signals(signum).name,
            })
            self._provenance(seconds, cpu)
        return result

    def _provenance(self, seconds: float, cpu: float) -> None:
        describe = getattr(self.data, "describe", None)
        self.run.write_json("provenance.json", {
            **source_commit(), "spinv_version": _spinv_version(), "torch": torch.__version__,
            **python_info(), "torch_threads": torch.get_num_threads(),
            "device": str(self.device), "precision": self.options.precision,
            "seed": self.options.seed, "data": describe() if callable(describe) else None,
            "objective": repr(self.objective), "options": dataclasses.asdict(self.options),
            **self._totals(seconds, cpu),
        })


def _spinv_version() -> str:
    import spinv

    return spinv.__version__
