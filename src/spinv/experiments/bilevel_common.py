"""Shared plumbing of the chapter-1 experiments (``spinv.experiments.bilevel_*``).

An experiment config is a YAML mapping with a ``base`` block (a
:class:`spinv.bilevel.config.SamplingConfig`) and experiment-specific keys; each point of a
sweep is one :func:`spinv.bilevel.pipeline.run_learning` with some base keys overridden, written
to ``OUT/<point>/`` (pattern, metrics), and the experiment writes ``OUT/summary.json`` and a
figure. Run as ``python -m spinv.experiments.bilevel_<name> CONFIG --out DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinv.atomic import atomic_write_json
from spinv.bilevel.config import SamplingConfig
from spinv.bilevel.pipeline import run_learning

__all__ = ["load_experiment", "run_point", "cli"]


def load_experiment(path: str | Path, allowed: dict) -> tuple[SamplingConfig, dict]:
    """Read ``base`` + experiment keys; ``allowed`` maps each experiment key to its default."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {str(path)!r}: no such file")
    d = yaml.safe_load(path.read_text()) or {}
    if not isinstance(d, dict):
        raise ValueError(f"config {str(path)!r}: expected a mapping")
    unknown = sorted(set(d) - set(allowed) - {"base"})
    if unknown:
        raise ValueError(f"unknown experiment key(s) {unknown}; allowed: base, {sorted(allowed)}")
    base = SamplingConfig.from_dict(d.get("base") or {})
    exp = {k: d.get(k, v) for k, v in allowed.items()}
    return base, exp


def run_point(base: SamplingConfig, out: Path, name: str, log=print, **overrides) -> dict:
    """One learning run with ``overrides`` applied to ``base``; output in ``out/name``."""
    cfg = SamplingConfig.from_dict({**base.to_dict(), **overrides})
    log(f"--- {name}: {overrides}")
    return run_learning(cfg, out / name, log=lambda s: log(f"[{name}] {s}"))


def cli(run, description: str, argv=None) -> int:
    """``prog CONFIG --out DIR``: call ``run(config_path, out_dir)`` and save its summary."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("config", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        summary = run(args.config, args.out)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write_json(args.out / "summary.json", summary)
    print(f"wrote {args.out / 'summary.json'}")
    return 0
