"""A long computation stopped cleanly by a signal (a leaf module: the CLI catches it without
importing torch)."""

from __future__ import annotations

__all__ = ["TrainingInterrupted"]


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived during :func:`spinv.training.engine.fit` of a run directory: the
    step in progress was finished, a checkpoint and ``summary.json`` (``"interrupted"``) were
    written, and the run resumes bit-identically from that step. ``step``, ``signal_name``,
    ``exit_code`` (128 + the signal number, the shell's convention)."""

    def __init__(self, message: str, step: int, signal_name: str, exit_code: int) -> None:
        super().__init__(message)
        self.step, self.signal_name, self.exit_code = step, signal_name, exit_code
