"""Convergence history returned by every solver."""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import torch


@dataclass
class History:
    """Per-iteration record of an iterative solver.

    ``objective[k]`` is the objective summed over the batch after iteration ``k`` (``nan`` when
    not tracked), ``residual[k]`` the solver's optimality residual (maximum over the batch),
    ``time[k]`` the wall time in seconds since the start, ``iterations`` the number of
    iterations run and ``converged`` whether the stopping rule fired.
    """

    objective: list[float] = field(default_factory=list)
    residual: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    extra: dict = field(default_factory=dict)
    _t0: float = field(default_factory=_time.perf_counter, repr=False)

    def record(self, objective, residual) -> None:
        """Append one iteration (tensors are reduced: objective summed, residual max)."""
        if isinstance(objective, torch.Tensor):
            objective = float(objective.sum())
        if isinstance(residual, torch.Tensor):
            residual = float(residual.max())
        self.objective.append(float("nan") if objective is None else float(objective))
        self.residual.append(float(residual))
        self.time.append(_time.perf_counter() - self._t0)
        self.iterations += 1

    @property
    def wall_time(self) -> float:
        """Total wall time in seconds (0 if nothing was recorded)."""
        return self.time[-1] if self.time else 0.0

    def as_dict(self) -> dict:
        """Plain-dict view (JSON-serialisable)."""
        return {
            "objective": list(self.objective),
            "residual": list(self.residual),
            "time": list(self.time),
            "iterations": self.iterations,
            "converged": self.converged,
            "wall_time": self.wall_time,
        }


def check_iterations(iterations, name: str = "iterations", low: int = 0) -> int:
    """``iterations`` if it is an integer >= ``low``, else ``ValueError`` naming ``name``."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < low:
        raise ValueError(f"{name}={iterations!r}: expected an integer >= {low}")
    return iterations


def check_number(value, name: str, minimum: float = 0.0, inclusive: bool = False,
                 optional: bool = False):
    """``value`` if it is a real number ``> minimum`` (``>= minimum`` when ``inclusive``), or
    ``None`` when ``optional``; else ``ValueError`` naming ``name``, the value and the bound."""
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not (value >= minimum if inclusive else value > minimum)):
        bound = f"{'>=' if inclusive else '>'} {minimum}" + (" or None" if optional else "")
        raise ValueError(f"{name}={value!r}: expected a number {bound}")
    return value


def check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}={value!r}: expected a positive float")
    return float(value)
