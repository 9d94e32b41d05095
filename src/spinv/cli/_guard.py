"""One guard around every CLI command (issue 15): numbers checked before the command runs, and
errors of the library reported under the command-line option that carried the value.

* :func:`guard_command` wraps a command function: every ``float`` option must be finite (a
  ``nan`` or ``inf`` passes every ``x > 0`` range check and then poisons the computation), and
  every ``int`` option must fit a 64-bit integer (torch and numpy cannot take more; ``--size
  10**23`` used to end in a multi-line C++ overflow message). The error names the option.
* :data:`LIBRARY_OPTIONS` maps the parameter names that the library's ``ValueError`` messages
  start with (``noise.photons=-1.0: expected ...``) to the option that set them; :func:`name_option`
  prefixes such a message with the option (``--photons: noise.photons=-1.0: expected ...``) when
  that option was on the command line.
* :func:`one_line` makes any exception text one line (a torch/C++ message or a list of
  ``load_state_dict`` mismatches spans many).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import typing
from collections.abc import Callable

INT64_MAX = 2**63 - 1

# library parameter (as the first word of a ValueError) -> the CLI option that sets it
LIBRARY_OPTIONS = {
    "noise.photons": "--photons",
    "noise.mu": "--mu",
    "photons": "--photons",
    "mu": "--mu",
    "noise.sigma": "--noise",
    "sigma": "--noise",
    "geometry.n_angles": "--angles",
    "n_angles": "--angles",
    "mask": "--mask",
    "alpha": "--alpha",
    "rate": "--rate",
    "tol": "--tol",
    "n_detectors": "--detectors",
    "angular_range": "--angular-range",
    "detector_spacing": "--detector-spacing",
    "max_steps": "--max-steps",
    "split": "--split",
    "name": "--name",
    "eps": "--eps",
    "gamma": "--gamma",
    "n_train": "--n-train",
    "kind": "--regulariser",
}


def _option_name(name: str, default: object) -> str:
    decls = getattr(default, "param_decls", None) or ()
    longs = [d for d in decls if isinstance(d, str) and d.startswith("--")]
    return longs[0] if longs else "--" + name.replace("_", "-")


def _kind(annotation: object) -> type | None:
    """``float`` or ``int`` for ``float``, ``float | None``, ... annotations, else None."""
    if isinstance(annotation, str):
        annotation = {"float": float, "int": int, "float | None": float,
                      "int | None": int}.get(annotation.replace("Optional[", "").rstrip("]"))
    args = typing.get_args(annotation) or (annotation,)
    kinds = {a for a in args if a in (float, int)}
    return kinds.pop() if len(kinds) == 1 else None


def check_number(option: str, kind: type, value: object) -> None:
    """Raise ``ValueError`` naming ``option`` when ``value`` is non-finite or overflows int64."""
    if value is None or isinstance(value, bool):
        return
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{option} {value}: expected a finite number")
    if kind is int and isinstance(value, int) and abs(value) > INT64_MAX:
        raise ValueError(f"{option} {value}: too large (at most {INT64_MAX})")


def guard_command(fn: Callable) -> Callable:
    """``fn`` with its numeric options checked by :func:`check_number` before it runs."""
    if getattr(fn, "__spinv_guarded__", False):
        return fn
    sig = inspect.signature(fn)
    numeric = {name: (_option_name(name, p.default), kind) for name, p in sig.parameters.items()
               if (kind := _kind(p.annotation)) is not None}

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        bound = sig.bind_partial(*args, **kwargs)
        for name, value in bound.arguments.items():
            if name in numeric:
                check_number(numeric[name][0], numeric[name][1], value)
        return fn(*args, **kwargs)

    guarded.__spinv_guarded__ = True
    return guarded


def guard_app(app) -> None:
    """Wrap every command of a typer app (and of its sub-apps) with :func:`guard_command`."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = guard_command(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_app(group.typer_instance)


_LEADING = re.compile(r"^([A-Za-z_][\w.]*)(=|: )")


def name_option(message: str, argv: list[str]) -> str:
    """Rewrite a message starting with a library parameter to name its command-line option."""
    m = _LEADING.match(message)
    if m is None or m.group(1) not in LIBRARY_OPTIONS:
        return message
    option = LIBRARY_OPTIONS[m.group(1)]
    if not any(a == option or a.startswith(option + "=") for a in argv):
        return message
    return f"{option}: {message}"


def one_line(message: str, limit: int = 500) -> str:
    """``message`` on one line: C++ back-traces dropped, lines joined with '; ', capped."""
    message = message.split("\nException raised from", 1)[0]
    parts = [p.strip() for p in message.splitlines() if p.strip()]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."
