"""Configs of the chapter-3 experiments (``spinv nonexpansive toy|denoise|pnp``).

A config file (``configs/nonexpansive-*.yaml``) is a mapping with an optional ``description``
and one section per command: ``toy:`` (Fig. 3.1), ``denoise:`` (Fig. 3.2, Table 3.1) and
``pnp:`` (Algorithm 6 on held-out CT / MRI slices). A section holds settings of
:data:`SCHEMAS`; missing settings take their defaults. Unknown keys, wrong types and
out-of-range values raise ``ValueError`` naming the key.

>>> cfg = load_config({"denoise": {"steps": 10, "gammas": [1.99]}}, "denoise")
>>> cfg["steps"], cfg["gammas"], cfg["sigma"]
(10, [1.99], 0.5)
>>> load_config({"toy": {"stpes": 3}}, "toy")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: config key 'toy.stpes': unknown; expected one of ...
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "SCHEMAS", "load_config", "resolve_device"]

COMMANDS = ("toy", "denoise", "pnp")

# key: (kind, default, help). kinds: int+, int0, float+, float0, bool, str, opt-<kind>,
# choice:a|b, list[<kind>].
_COMMON: dict[str, tuple[str, Any, str]] = {
    "seed": ("int0", 0, "seed of data, noise, weights and minibatches"),
    "threads": ("opt-int+", None, "torch threads (null: leave as is)"),
    "device": ("str", "auto", "auto, cpu, cuda, cuda:0, ..."),
}

SCHEMAS: dict[str, dict[str, tuple[str, Any, str]]] = {
    "toy": {
        "n_points": ("int+", 6, "random training points in [-1, 1] (6 in Fig. 3.1)"),
        "steps": ("int+", 2000, "Adam steps per network"),
        "lr": ("float+", 1e-2, "Adam learning rate"),
        "depth": ("int+", 10, "layers it of both ResNets (10 in the thesis)"),
        "hidden": ("int+", 10, "rows of each A_i (10 in the thesis)"),
        "step": ("float+", 2.0, "step size h of Algorithm 7 (2 in the thesis)"),
        **_COMMON,
    },
    "denoise": {
        "sigma": ("float+", 0.5, "std of the Gaussian noise (0.5 in the thesis)"),
        "steps": ("int0", 300, "Adam steps per network (2000 epochs in the thesis)"),
        "width": ("int+", 16, "channels of Xi (64 in the thesis)"),
        "depth": ("int+", 10, "layers it of Xi (10 in the thesis)"),
        "step": ("float+", 2.0, "step size h (2 in the thesis)"),
        "gammas": ("list[float+]", [1.0, 1.5, 1.99], "scalings gamma of Eqs. 3.5/3.6 (Euler)"),
        "residual": ("list[bool]", [True, False], "Euler: residual (3.6) and/or plain (3.5)"),
        "higher_order": ("list[choice:heun|rk4]", ["heun", "rk4"],
                         "methods trained residually with the last gamma (Table 3.1)"),
        "include_dncnn": ("bool", True, "train the unconstrained DnCNN baseline"),
        "dncnn_width": ("opt-int+", None, "DnCNN width (null: width)"),
        "dncnn_depth": ("int+", 20, "DnCNN layers (20 in the thesis)"),
        "dncnn_batch_norm": ("bool", True, "batch normalisation in DnCNN"),
        "include_tv": ("bool", True, "TV denoising baseline, alpha tuned on training crops"),
        "tv_iterations": ("int+", 200, "dual FISTA iterations of the TV prox"),
        "tv_tune_crops": ("int+", 8, "96x96 training crops used to tune alpha"),
        "crop": ("int+", 32, "side of the random training crops"),
        "batch_size": ("int+", 5, "minibatch size (5 in the thesis)"),
        "lr": ("float+", 1e-3, "Adam learning rate"),
        "lr_schedule": ("choice:constant|cosine", "constant", "learning-rate schedule"),
        "test_size": ("opt-int+", 128, "centre crop of the test images (null: full size)"),
        "n_test": ("opt-int+", None, "test images used (null: the whole test split)"),
        **_COMMON,
    },
    "pnp": {
        "problem": ("choice:ct|mri", "ct", "ct (ct-head, low-dose) or mri (brain-t1, lines)"),
        "dataset": ("opt-str", None, "dataset (null: ct-head for ct, brain-t1 for mri)"),
        "image_size": ("int+", 64, "side of the (area-downsampled) square slices"),
        "n_val": ("int+", 4, "validation slices (evenly spaced) the parameters are chosen on"),
        "n_test": ("opt-int+", None, "test slices (evenly spaced; null: the whole test split)"),
        "show_index": ("int0", 0, "test slice (of those used) shown in reconstructions.png"),
        "n_angles": ("int+", 50, "CT: number of views"),
        "photons": ("opt-float+", 1e4, "CT: photons per detector pixel (null: noiseless)"),
        "mask": ("choice:lines|variable-density|random|equispaced-lines|low-pass|radial",
                 "lines", "MRI: sampling pattern (lines: variable-density Cartesian lines)"),
        "rate": ("float+", 0.25, "MRI: sampling rate"),
        "noise": ("float0", 0.02, "MRI: complex Gaussian noise level"),
        "iterations": ("int+", 100, "PnP proximal-gradient iterations (Algorithm 6)"),
        "init": ("choice:analytic|adjoint|zeros", "analytic", "u_0: FBP / zero filling, A*y, 0"),
        "weights": ("list[float+]", [0.1, 0.2, 0.4, 0.7, 1.0], "PGD grid of lambda in (0, 1]: "
                    "(1-lambda) id + lambda Phi (lambda alpha-averaged)"),
        "step_factors": ("list[float+]", [1.0], "PGD grid of c in (0, 2): step tau = c/||A||^2"),
        "include_admm": ("bool", True, "also run (and tune) PnP-ADMM"),
        "admm_iterations": ("int+", 50, "PnP-ADMM iterations"),
        "cg_iterations": ("int+", 20, "conjugate-gradient steps of the ADMM data step"),
        "admm_rhos": ("list[float+]", [0.03, 0.1, 0.3, 1.0], "ADMM grid of r: rho = r ||A||^2"),
        "admm_weights": ("list[float+]", [0.5], "ADMM grid of lambda (averaged denoiser: only "
                         "lambda alpha <= 1/2, firmly nonexpansive)"),
        "include_tv": ("bool", True, "TV baseline, alpha tuned on the validation slices"),
        "tv_iterations": ("int+", 300, "PDHG iterations of TV"),
        "tv_grid": ("list[float+]", [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
                    "log grid of TV alpha (then golden-section refinement)"),
        "tv_refine": ("int0", 6, "golden-section steps refining TV alpha"),
        "denoiser_sigmas": ("list[float+]", [0.05], "noise levels the denoisers are trained "
                            "for (one pair per value; chosen on validation)"),
        "train_steps": ("int0", 300, "Adam steps per denoiser"),
        "width": ("int+", 16, "channels of the averaged denoiser's Xi"),
        "depth": ("int+", 10, "layers of Xi"),
        "method": ("choice:euler|heun|rk4", "euler", "integrator of Xi"),
        "gamma": ("float+", 1.99, "gamma < 2: id - gamma Gamma is gamma/2-averaged"),
        "include_dncnn": ("bool", True, "also run PnP with an unconstrained DnCNN"),
        "dncnn_width": ("opt-int+", None, "DnCNN width (null: width)"),
        "dncnn_depth": ("int+", 17, "DnCNN layers"),
        "dncnn_batch_norm": ("bool", False, "batch normalisation in DnCNN"),
        "crop": ("int+", 32, "side of the random training crops"),
        "batch_size": ("int+", 5, "minibatch size"),
        "lr": ("float+", 1e-3, "Adam learning rate"),
        "lr_schedule": ("choice:constant|cosine", "cosine", "learning-rate schedule"),
        **_COMMON,
    },
}


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"config key {key!r}: got {value!r}; expected {expected}")


def _coerce(key: str, kind: str, value: Any) -> Any:
    if kind.startswith("opt-"):
        return None if value is None else _coerce(key, kind[4:], value)
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise _fail(key, value, f"a non-empty list of {inner}")
        return [_coerce(key, inner, v) for v in value]
    if kind.startswith("choice:"):
        options = kind[7:].split("|")
        if value not in options:
            raise _fail(key, value, f"one of {options}")
        return value
    if kind in ("int+", "int0"):
        low = 1 if kind == "int+" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _fail(key, value, f"an integer >= {low}")
        return value
    if kind in ("float+", "float0"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0 or (kind == "float+" and value == 0):
            raise _fail(key, value, f"a finite number {'> 0' if kind == 'float+' else '>= 0'}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise _fail(key, value, "a non-empty string")
        return value
    raise AssertionError(kind)  # pragma: no cover


def _read(source: str | os.PathLike | dict | None) -> dict:
    if source is None:
        return {}
    if isinstance(source, dict):
        return source
    import yaml

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"config {str(path)!r}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"config {str(path)!r}: invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config {str(path)!r}: expected a mapping, got {type(data).__name__}")
    return data


def load_config(source: str | os.PathLike | dict | None, command: str) -> dict[str, Any]:
    """Validated settings of ``command`` from a YAML file, a dict or ``None`` (all defaults).

    A file that has sections but not the one of ``command`` is an error (it was meant for
    another command); a file with no section at all gives the defaults.
    """
    if command not in COMMANDS:
        raise ValueError(f"command={command!r}: expected one of {list(COMMANDS)}")
    data = _read(source)
    for key in data:
        if key not in (*COMMANDS, "description"):
            raise ValueError(f"config key {key!r}: unknown; expected one of "
                             f"{['description', *COMMANDS]}")
    sections = [c for c in COMMANDS if c in data]
    if sections and command not in data:
        raise ValueError(f"config has no {command!r} section (it has {sections}); "
                         f"use it with `spinv nonexpansive {sections[0]}`")
    section = data.get(command) or {}
    if not isinstance(section, dict):
        raise ValueError(f"config key {command!r}: expected a mapping, got {section!r}")
    schema = SCHEMAS[command]
    cfg: dict[str, Any] = {}
    for key, value in section.items():
        if key not in schema:
            raise ValueError(f"config key '{command}.{key}': unknown; expected one of "
                             f"{sorted(schema)}")
        cfg[key] = _coerce(f"{command}.{key}", schema[key][0], value)
    for key, (_, default, _) in schema.items():
        cfg.setdefault(key, list(default) if isinstance(default, list) else default)
    if command == "pnp" and cfg["gamma"] >= 2.0:
        raise _fail("pnp.gamma", cfg["gamma"], "a value in (0, 2) (averaged denoiser)")
    if command == "pnp":
        for key in ("weights", "admm_weights"):
            if max(cfg[key]) > 1.0:
                raise _fail(f"pnp.{key}", cfg[key], "values in (0, 1]")
        if max(cfg["step_factors"]) >= 2.0:
            raise _fail("pnp.step_factors", cfg["step_factors"], "values in (0, 2)")
    if command == "pnp" and cfg["rate"] > 1.0:
        raise _fail("pnp.rate", cfg["rate"], "a value in (0, 1]")
    return cfg


def resolve_device(name: str):
    """``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(name)``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"config key 'device': got {name!r}; expected auto, cpu, cuda, "
                         "cuda:N") from None
