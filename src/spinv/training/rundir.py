"""Run directories: where every trained model lives, locked while a process writes it.

Layout of a run directory ``RUN`` (written by :func:`spinv.training.engine.fit`)::

    RUN/spinv-run.json        marker: this folder is a spinv run (format, creation time)
    RUN/.lock                 OS lock (fcntl.flock) held by the one process writing the run
    RUN/config.yaml           the configuration that produced the run
    RUN/problem.json          the serialised measurement problem (when there is one)
    RUN/ckpt-000100/…         checkpoints (:mod:`spinv.training.checkpoint`)
    RUN/latest.json           pointer to the newest complete checkpoint
    RUN/log.jsonl             one JSON record per step (loss, lr, objective scalars, …)
    RUN/summary.json          final step, loss, validation, timings
    RUN/provenance.json       commit, torch version, threads, precision, CPU seconds, seed, data

Two guarantees (issue 15, items 1-2):

- **One writer.** :func:`open_run` takes an exclusive, non-blocking ``fcntl.flock`` on
  ``RUN/.lock`` and holds it until :meth:`RunDirectory.close`; a second writer gets
  :class:`RunLockedError` naming the directory. The kernel drops the lock when the process dies,
  so a killed run never leaves a stale lock.
- **No foreign folder is written into.** A non-empty folder that is not a run (no marker, and
  no checkpoint of a run written before the marker existed: ``latest.json``, ``ckpt-*``) is
  refused with :class:`NotARunError` unless ``force``.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     with open_run(pathlib.Path(d) / "run", {"model": {"name": "x"}}) as run:
...         is_run(run.path), (run.path / MARKER).is_file()
(True, True)
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import spinv
from spinv.atomic import atomic_write_json, atomic_write_text
from spinv.training.checkpoint import LATEST, Checkpoint, read_checkpoint

__all__ = [
    "MARKER",
    "NotARunError",
    "RunDirectory",
    "RunLockedError",
    "VOLATILE_KEYS",
    "config_differences",
    "is_run",
    "open_run",
    "source_commit",
]

MARKER = "spinv-run.json"
LOCK = ".lock"
RUN_FORMAT = "spinv-run/1"

# Config keys (dotted; a section name covers the whole section) that may change on --resume.
VOLATILE_KEYS = ("train.steps", "train.checkpoint_every", "train.log_every",
                 "train.num_threads", "train.device", "train.tensorboard", "eval")


class RunLockedError(OSError):
    """Another process holds the lock of the run directory."""


class NotARunError(ValueError):
    """The folder is neither empty nor a spinv run."""


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a spinv run directory (marker, or a run of an earlier version)."""
    p = Path(path)
    if not p.is_dir():
        return False
    if (p / MARKER).is_file() or (p / LATEST).is_file():
        return True
    # a run of an earlier version is recognised by a checkpoint; files with common names
    # (config.yaml, log.jsonl, summary.json) alone may be the user's own and are never taken
    # for a run, so that nothing of theirs is overwritten
    return any(c.is_dir() and c.name[5:].isdigit() for c in p.glob("ckpt-*"))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flatten(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def config_differences(saved: dict, new: dict,
                       volatile: tuple[str, ...] = VOLATILE_KEYS) -> list[str]:
    """Dotted keys whose values differ between two configs, ignoring ``volatile`` keys."""
    a, b = _flatten(saved), _flatten(new)

    def fixed(key: str) -> bool:
        return not any(key == v or key.startswith(v + ".") for v in volatile)

    return sorted(k for k in set(a) | set(b) if fixed(k) and a.get(k) != b.get(k))


def source_commit() -> dict:
    """``{"commit", "dirty"}`` of the git checkout spinv is imported from (``None`` outside one)."""
    root = Path(spinv.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head or None, "dirty": dirty}


class RunDirectory:
    """An open, locked run directory (use :func:`open_run`); a context manager that releases
    the lock on exit."""

    def __init__(self, path: Path, lock_fd: int, config: dict, checkpoint: Checkpoint | None):
        self.path = path
        self.config = config
        self.checkpoint = checkpoint  # the checkpoint to resume from (None: a fresh run)
        self._lock_fd: int | None = lock_fd

    @property
    def resuming(self) -> bool:
        return self.checkpoint is not None

    def write_yaml(self, name: str, data: dict) -> Path:
        atomic_write_text(self.path / name, yaml.safe_dump(data, sort_keys=False))
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        atomic_write_json(self.path / name, data)
        return self.path / name

    def read_json(self, name: str) -> dict:
        import json

        p = self.path / name
        try:
            return json.loads(p.read_text()) if p.is_file() else {}
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net
        self.close()


def _acquire(path: Path) -> int:
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLockedError(
            f"run directory {str(path)!r} is being written by another process (lock "
            f"{str(path / LOCK)!r} is held); wait for it to finish or choose another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _check_foreign(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--out {str(path)!r} is a file, not a run directory")
    entries = [c for c in path.iterdir() if c.name != LOCK] if path.is_dir() else []
    if entries and not is_run(path) and not force:  # (a lone lock: a writer killed at birth)
        raise NotARunError(
            f"--out {str(path)!r} is a non-empty folder that is not a spinv run (no {MARKER}); "
            "refusing to write into it: choose an empty or new folder, or pass --force"
        )


def open_run(
    path: str | os.PathLike,
    config: dict,
    *,
    resume: bool = False,
    force: bool = False,
    problem: dict | None = None,
    normalise: Callable[[dict], dict] | None = None,
) -> RunDirectory:
    """Open ``path`` for writing a run trained with ``config`` (a plain dict).

    Refuses a foreign folder (unless ``force``) and a folder another process is writing; a run
    with a checkpoint needs ``resume=True``, and then its saved config must equal ``config``
    up to :data:`VOLATILE_KEYS` (``normalise`` maps a saved config to the current schema, e.g.
    filling defaults of keys added since). ``resume=True`` on a folder that is not a run is an
    error (a mistyped path must not silently start a new run). Writes the marker,
    ``config.yaml`` and ``problem.json``.
    """
    run = Path(path)
    _check_foreign(run, force)
    if resume and not is_run(run):
        raise NotARunError(f"--resume: {str(run)!r} is not a spinv run (nothing to resume)")
    run.mkdir(parents=True, exist_ok=True)
    fd = _acquire(run)
    try:
        checkpoint = _resume_checkpoint(run, config, resume, normalise)
        if not (run / MARKER).is_file():
            atomic_write_json(run / MARKER, {"format": RUN_FORMAT, "created": time.time(),
                                             "spinv_version": spinv.__version__})
        atomic_write_text(run / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        if problem is not None:
            atomic_write_json(run / "problem.json", problem)
    except BaseException:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise
    return RunDirectory(run, fd, config, checkpoint)


def _resume_checkpoint(run: Path, config: dict, resume: bool,
                       normalise: Callable[[dict], dict] | None) -> Checkpoint | None:
    if not (run / LATEST).is_file():
        return None
    if not resume:
        raise ValueError(
            f"--out {str(run)!r} already holds a training run; pass --resume to continue it "
            "or choose a new directory"
        )
    ck = read_checkpoint(run, map_location="cpu")
    saved = ck.metadata.get("config") or {}
    if normalise is not None:
        try:
            saved = normalise(saved)
        except (ValueError, TypeError) as err:
            raise ValueError(f"--resume: the saved config of {str(run)!r} is invalid: {err}") \
                from None
    diffs = config_differences(saved, config)
    if diffs:
        raise ValueError(
            f"--resume: the config differs from the run's saved config in {', '.join(diffs)} "
            f"(sections {', '.join(sorted({d.split('.')[0] for d in diffs}))}); resume with the "
            "same config or start a new --out directory"
        )
    _check_resumed_steps(run, ck, saved, config)
    return ck


def _check_resumed_steps(run: Path, ck: Checkpoint, saved: dict, config: dict) -> None:
    """Refuse resuming past the new ``train.steps``; warn when a changed total reshapes a
    non-constant learning-rate schedule (the run then differs from an uninterrupted one)."""
    done = int(ck.metadata.get("step", 0))
    new_train, old_train = config.get("train") or {}, saved.get("train") or {}
    total, before = new_train.get("steps"), old_train.get("steps")
    if total is None:
        return
    if done > total:
        raise ValueError(
            f"--resume: the run in {str(run)!r} is already at step {done}, beyond train.steps = "
            f"{total}; pass --set train.steps={max(done, before or done)} (or more) to continue "
            "it, or evaluate it as it is")
    schedule = new_train.get("lr_schedule", "constant")
    if before is not None and total != before and schedule != "constant":
        import warnings

        warnings.warn(
            f"--resume: train.steps changed from {before} to {total}, so the {schedule} "
            f"learning-rate schedule of the remaining steps differs from the original run's",
            UserWarning, stacklevel=4)


def python_info() -> dict:
    """Interpreter and platform facts recorded in ``provenance.json``."""
    import platform

    return {"python": sys.version.split()[0], "platform": platform.platform()}
