"""Observability of training runs: JSONL step log, progress bar, optional TensorBoard.

``RUN/log.jsonl`` holds one JSON object per line: ``{"step", "loss", "lr", "images_per_s",
"elapsed"}`` for every training step and ``{"step", "val_loss", "val_psnr", "val_ssim"}`` after
each validation. On resume, lines beyond the resumed step are dropped so that the log of a
resumed run matches that of an uninterrupted one.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     log = JsonlLogger(pathlib.Path(d) / "log.jsonl")
...     log.write({"step": 1, "loss": 0.5}); log.write({"step": 2, "loss": 0.25}); log.close()
...     log = JsonlLogger(pathlib.Path(d) / "log.jsonl", resume_step=1); log.close()
...     [r["step"] for r in read_log(pathlib.Path(d) / "log.jsonl")]
[1]
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any


def read_log(path: str | os.PathLike) -> list[dict]:
    """Records of a JSONL log; a truncated last line (killed writer) is ignored."""
    out = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlLogger:
    """Append-only JSON-lines log; with ``resume_step`` it first drops records after that step."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        from spinv.atomic import atomic_write_text

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            keep = [r for r in read_log(self.path) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class ProgressBar:
    """A tqdm bar implementing the progress protocol ``progress(step, total, scalars)`` of
    :func:`spinv.training.engine.fit`: shows the step, the loss, the throughput (images/s when
    logged) and tqdm's ETA. ``enabled=None`` shows it only on a terminal; use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, total: int, initial: int = 0, enabled: bool | None = None,
                 desc: str = "train", leave: bool = True) -> None:
        from tqdm.auto import tqdm

        disable = (not sys.stderr.isatty()) if enabled is None else not enabled
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", disable=disable,
                        dynamic_ncols=True, file=sys.stderr, leave=leave, mininterval=0.5)

    def __call__(self, step: int, total: int, scalars: dict) -> None:
        post = {}
        if scalars.get("loss") is not None:
            post["loss"] = f"{scalars['loss']:.4g}"
        if scalars.get("images_per_s") is not None:
            post["img_s"] = f"{scalars['images_per_s']:.1f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorBoard:
    """Optional TensorBoard scalars; if ``tensorboard`` is not installed, prints one message and
    does nothing."""

    def __init__(self, log_dir: str | os.PathLike, enabled: bool) -> None:
        self.writer = None
        self.message = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.message = (
                "tensorboard logging requested (train.tensorboard: true) but the 'tensorboard' "
                "package is not installed; install it with `pip install spinv[tensorboard]`. "
                "Continuing with log.jsonl only."
            )
            print(self.message, file=sys.stderr)
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, step: int, values: dict) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and k != "step":
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
