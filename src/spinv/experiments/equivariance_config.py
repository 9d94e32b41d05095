"""Configs of the equivariance experiments of thesis §2.5 (``spinv equivariance ...``).

A config file (``configs/equivariance-*.yaml``) is a mapping with the optional top-level keys
``command`` (``sweep-n``, ``groups`` or ``depth``: the command the file is meant for),
``description``, and one section per scale, ``small:`` (CPU minutes) and/or ``paper:`` (the
thesis' sizes, for a GPU). A section holds the settings of :data:`SCHEMA`; missing settings take
the command's defaults (:data:`COMMAND_DEFAULTS`, then :data:`SCHEMA`). Unknown keys, wrong types
and out-of-range values raise ``ValueError`` naming the key.

>>> cfg = load_config({"small": {"problem": "mri", "image_size": 32}}, "sweep-n", "small")
>>> cfg["problem"], cfg["image_size"], cfg["groups"]
('mri', 32, [None, 'C4'])
>>> load_config({"small": {"widht": 8}}, "groups", "small")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config key 'widht' (scale 'small'): unknown; expected one of ...
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "COMMAND_DEFAULTS", "SCALES", "SCHEMA", "load_config"]

COMMANDS = ("sweep-n", "groups", "depth")
SCALES = ("small", "paper")

# key: (kind, default, help). kinds: int+ (positive int), int0 (int >= 0), float+ (positive
# float), float0, bool, str, choice:a|b, list[int+], list[group], list[float+], opt-float+,
# opt-int+, group.
SCHEMA: dict[str, tuple[str, Any, str]] = {
    # problem and data (§2.5.1)
    "problem": ("choice:ct|mri", "ct", "ct (ct-head, 50 views, low dose) or mri (brain-t1)"),
    "image_size": ("int+", 64, "side of the square images (slices are area-downsampled)"),
    "n_test": ("int+", 8, "held-out slices (capped at the split's size)"),
    "n_angles": ("int+", 50, "CT: number of views"),
    "photons": ("float+", 1e4, "CT: photons per detector pixel N_in"),
    "rate": ("float+", 0.2, "MRI: sampled fraction of k-space lines"),
    "noise": ("float0", 0.02, "MRI: complex Gaussian noise level sigma"),
    # model and training (§2.5.2)
    "width": ("int+", 32, "|H| * n_channels of the intermediate features (96 in the thesis)"),
    "iterations": ("int+", 8, "unrolled iterations of Algorithm 5 (8 in the thesis)"),
    "memory": ("int0", 5, "memory channels of Algorithm 5"),
    "steps": ("int+", 300, "Adam steps per model (1e5 in the thesis)"),
    "lr": ("float+", 5e-4, "Adam learning rate (1e-4 in the thesis)"),
    "batch_size": ("int+", 1, "minibatch size"),
    "clip_grad_norm": ("opt-float+", 1.0, "gradient-norm clipping (null: none)"),
    "bf16": ("bool", False, "bfloat16 autocast for the networks"),
    "threads": ("opt-int+", None, "torch threads (null: leave as is)"),
    "device": ("str", "auto", "auto, cpu, cuda, cuda:0, ..."),
    "seed": ("int0", 0, "seed of data noise, test rotations, weights and minibatches"),
    "eval_split": ("choice:test|val", "test", "split the models are evaluated on"),
    "checkpoint_every": ("opt-int+", None, "checkpoint interval of model runs (null: steps/10)"),
    # sweep-n (Figs 2.8, 2.10)
    "n_train_values": ("list[int+]", [10, 20, 50, 100], "training-set sizes N"),
    "groups": ("list[group]", [None, "C4"], "models: null (ordinary) or C<m>/D<m>"),
    "baselines": ("bool", True, "also evaluate FBP/zero filling and TV (alpha tuned on training)"),
    # groups (Fig. 2.7)
    "n_train": ("int+", 100, "training-set size"),
    "orders": ("list[int+]", [1, 2, 3, 4, 6, 8], "orders m of the rotation groups C_m"),
    # depth (Fig. 2.12)
    "total_iterations": ("int+", 40, "learned iterations applied, past the trained depth"),
    "reuse": ("choice:cycle|last", "cycle", "blocks past the depth: cycle through all, or last"),
    "pdhg_iterations": ("opt-int+", None, "TV-PDHG iterates shown (null: total_iterations)"),
    "alpha_grid": ("list[float+]", [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "TV alpha grid for tuning"),
    "tune_images": ("int+", 4, "training slices used to tune alpha"),
    "tune_iterations": ("int+", 300, "PDHG iterations per reconstruction while tuning"),
    "golden_iterations": ("int0", 4, "golden-section refinements of alpha"),
    "n_show": ("int+", 4, "test slices of the PSNR-vs-iteration curves"),
}

COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    "sweep-n": {},
    "groups": {"eval_split": "val"},  # Fig. 2.7 is measured on a validation set
    "depth": {"groups": ["C4"], "n_train": 50, "n_test": 4},
}

_TOP_LEVEL = {"command", "description", *SCALES}


def _fail(key: str, scale: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"config key {key!r} (scale {scale!r}): got {value!r}; expected {expected}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_group(v: Any) -> bool:
    if v is None:
        return True
    from spinv.nn.groups import parse_group

    try:
        parse_group(v)
    except (TypeError, ValueError):
        return False
    return True


def _coerce(key: str, kind: str, value: Any, scale: str) -> Any:
    if kind.startswith("opt-"):
        return None if value is None else _coerce(key, kind[4:], value, scale)
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise _fail(key, scale, value, f"a non-empty list of {inner}")
        return [_coerce(key, inner, v, scale) for v in value]
    if kind.startswith("choice:"):
        options = kind[7:].split("|")
        if value not in options:
            raise _fail(key, scale, value, f"one of {options}")
        return value
    if kind in ("int+", "int0"):
        low = 1 if kind == "int+" else 0
        if not _is_int(value) or value < low:
            raise _fail(key, scale, value, f"an integer >= {low}")
        return value
    if kind in ("float+", "float0"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0 or (kind == "float+" and value == 0):
            bound = "> 0" if kind == "float+" else ">= 0"
            raise _fail(key, scale, value, f"a finite number {bound}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(key, scale, value, "true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise _fail(key, scale, value, "a string")
        return value
    if kind == "group":
        if not _check_group(value):
            raise _fail(key, scale, value, "null (ordinary) or 'C<m>'/'D<m>' with m >= 1")
        return value
    raise AssertionError(kind)  # pragma: no cover


def load_config(
    source: str | os.PathLike | dict, command: str, scale: str = "small"
) -> dict[str, Any]:
    """Settings of ``command`` at ``scale`` from a YAML file or a dict (see module docstring)."""
    if command not in COMMANDS:
        raise ValueError(f"command={command!r}: expected one of {list(COMMANDS)}")
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}: expected one of {list(SCALES)}")
    if isinstance(source, dict):
        data, name = source, "<dict>"
    else:
        import yaml

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        data, name = yaml.safe_load(path.read_text()) or {}, str(path)
    if not isinstance(data, dict):
        raise ValueError(f"config {name!r}: expected a mapping at the top level")
    unknown = sorted(set(map(str, data)) - _TOP_LEVEL)
    if unknown:
        raise ValueError(
            f"config {name!r}: unknown top-level key {unknown[0]!r}; expected {sorted(_TOP_LEVEL)}"
        )
    meant = data.get("command")
    if meant is not None and meant != command:
        raise ValueError(f"config {name!r} is for command {meant!r}, not {command!r}")
    section = data.get(scale)
    if not isinstance(section, dict):
        have = [s for s in SCALES if s in data]
        raise ValueError(f"config {name!r}: no {scale!r} section (--scale); it has {have}")
    cfg = {key: copy.deepcopy(spec[1]) for key, spec in SCHEMA.items()}
    cfg.update(copy.deepcopy(COMMAND_DEFAULTS[command]))
    for key, value in section.items():
        if key not in SCHEMA:
            raise ValueError(
                f"config key {key!r} (scale {scale!r}): unknown; expected one of {sorted(SCHEMA)}"
            )
        cfg[key] = _coerce(key, SCHEMA[key][0], value, scale)
    if cfg["problem"] == "mri" and not cfg["rate"] <= 1:
        raise _fail("rate", scale, cfg["rate"], "a sampling rate in (0, 1]")
    if cfg["image_size"] < 8:
        raise _fail("image_size", scale, cfg["image_size"], "an integer >= 8")
    cfg["command"], cfg["scale"] = command, scale
    return cfg
