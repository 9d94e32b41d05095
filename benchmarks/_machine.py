"""What every benchmark records beside its timings: the machine, the software, the threads."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None, **extra) -> dict:
    """Platform, CPU, core count, load average, library versions, torch threads (``threads`` or
    the current setting) and a UTC timestamp; ``extra`` entries are added as given."""
    info = {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    info.update(extra)
    return info
