"""Runge--Kutta methods as Butcher tableaux and their circle-contractivity radius.

An :math:`m`-stage Runge--Kutta (RK) method (thesis, Definition 3.2.1) is given by a matrix
:math:`a\\in\\mathbb R^{m\\times m}` and vectors :math:`b, c\\in\\mathbb R^m` with
:math:`\\sum_j b_j = 1`, :math:`c_i = \\sum_j a_{ij}`; one step of size :math:`h` is

.. math:: \\Phi_h(t, y, f) = y + h\\sum_i b_i f(t + c_i h, Y_i),\\qquad
          Y_i = y + h\\sum_j a_{ij} f(t + c_j h, Y_j).

It is *r-circle contractive* (Definition 3.2.2) if :math:`|K(\\zeta)|\\le 1` for all
:math:`\\zeta\\in D(r)^m` with :math:`K(\\zeta) = 1 + b^T\\operatorname{diag}(\\zeta)
(I - a\\operatorname{diag}(\\zeta))^{-1}\\mathbb 1` and :math:`D(r)` the disk
:math:`\\{|z + r|\\le r\\}` (half-plane for :math:`r=\\infty`, disk complement for
:math:`r<0`). The optimal :math:`r` is computed as in Remark 3.2.1 (Theorem 3.1 of Dahlquist &
Jeltsch, 1979): with :math:`Q = \\operatorname{diag}(b)a + a^T\\operatorname{diag}(b) - bb^T`
and :math:`\\rho` the smallest generalised eigenvalue of :math:`Qv = \\lambda
\\operatorname{diag}(b)v`, :math:`r = -1/\\rho` (:math:`r=\\infty` when :math:`\\rho=0`).
Theorem 3.2.1 then makes a step nonexpansive for vector fields with
:math:`\\langle f(y)-f(z), y-z\\rangle\\le-\\nu\\|f(y)-f(z)\\|^2` whenever :math:`h\\le 2\\nu r`.

>>> circle_contractivity_radius(EULER)
1.0
>>> round(circle_contractivity_radius(RK4), 12)
1.0
>>> round(circle_contractivity_radius(ButcherTableau.from_lists([[0, 0], [0.5, 0]],
...                                                              [0.5, 0.5])), 12)
2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

__all__ = [
    "ButcherTableau",
    "EULER",
    "HEUN",
    "RK4",
    "RALSTON",
    "TABLEAUX",
    "get_tableau",
    "circle_contractivity_radius",
    "stability_function",
    "rk_lipschitz_bound",
]


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients ``a`` (m x m), ``b`` (m,) of an RK method (Definition 3.2.1).

    ``c`` is derived as the row sums of ``a``. Tuples are used so instances are hashable and
    immutable.
    """

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        m = len(self.b)
        if m == 0:
            raise ValueError("ButcherTableau: b=() is empty; expected at least one stage")
        if len(self.a) != m or any(len(row) != m for row in self.a):
            raise ValueError(
                f"ButcherTableau: a has shape {[len(r) for r in self.a]} rows, expected a "
                f"{m} x {m} matrix matching len(b)={m}"
            )
        vals = [float(v) for row in self.a for v in row] + [float(v) for v in self.b]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError("ButcherTableau: a and b must be finite")
        if abs(sum(self.b) - 1.0) > 1e-10:
            raise ValueError(
                f"ButcherTableau: b={self.b} sums to {sum(self.b)}; a consistent RK method "
                "needs sum(b) = 1 (Definition 3.2.1)"
            )

    @classmethod
    def from_lists(cls, a, b, name: str = "custom") -> ButcherTableau:
        """Build from nested lists / arrays ``a`` and ``b``."""
        return cls(tuple(tuple(float(v) for v in row) for row in a),
                   tuple(float(v) for v in b), name)

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def c(self) -> tuple[float, ...]:
        return tuple(sum(row) for row in self.a)

    @property
    def explicit(self) -> bool:
        """True if ``a`` is strictly lower triangular (stages computable in one pass)."""
        return all(self.a[i][j] == 0.0 for i in range(self.stages) for j in range(i, self.stages))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.a, dtype=np.float64), np.array(self.b, dtype=np.float64)


EULER = ButcherTableau(((0.0,),), (1.0,), "euler")
HEUN = ButcherTableau(((0.0, 0.0), (1.0, 0.0)), (0.5, 0.5), "heun")
RALSTON = ButcherTableau(((0.0, 0.0), (2.0 / 3.0, 0.0)), (0.25, 0.75), "ralston")
RK4 = ButcherTableau(
    ((0.0, 0.0, 0.0, 0.0), (0.5, 0.0, 0.0, 0.0), (0.0, 0.5, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0)),
    (1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0),
    "rk4",
)
TABLEAUX: dict[str, ButcherTableau] = {t.name: t for t in (EULER, HEUN, RALSTON, RK4)}


def get_tableau(method: str | ButcherTableau) -> ButcherTableau:
    """Look a tableau up by name (``"euler"``, ``"heun"``, ``"ralston"``, ``"rk4"``)."""
    if isinstance(method, ButcherTableau):
        return method
    if not isinstance(method, str) or method.lower() not in TABLEAUX:
        raise ValueError(
            f"method={method!r}: expected a ButcherTableau or one of {sorted(TABLEAUX)}"
        )
    return TABLEAUX[method.lower()]


def circle_contractivity_radius(tableau: ButcherTableau, tol: float = 1e-12) -> float:
    """Optimal :math:`r` with the method r-circle contractive (Remark 3.2.1).

    Solves :math:`Qv = \\lambda\\operatorname{diag}(b)v` and returns :math:`-1/\\rho` for the
    smallest eigenvalue :math:`\\rho` (``math.inf`` if :math:`|\\rho|\\le` ``tol``; a negative
    value means the complement-of-a-disk case of Definition 3.2.2). The characterisation needs
    :math:`b_i > 0`; if some :math:`b_i\\le 0` no disk of positive radius works (e.g. the
    explicit midpoint rule, whose disk degenerates to a point) and ``0.0`` is returned.
    """
    tableau = get_tableau(tableau)
    a, b = tableau.arrays()
    if np.any(b <= 0):
        return 0.0
    q = np.diag(b) @ a + a.T @ np.diag(b) - np.outer(b, b)
    rho = float(scipy.linalg.eigh(q, np.diag(b), eigvals_only=True)[0])
    if abs(rho) <= tol:
        return math.inf
    return -1.0 / rho


def stability_function(tableau: ButcherTableau, zeta: np.ndarray) -> np.ndarray:
    """:math:`K(\\zeta) = 1 + b^T\\operatorname{diag}(\\zeta)
    (I - a\\operatorname{diag}(\\zeta))^{-1}\\mathbb 1` of Definition 3.2.2, vectorised over the
    leading axes of ``zeta`` (..., m)."""
    tableau = get_tableau(tableau)
    a, b = tableau.arrays()
    zeta = np.asarray(zeta, dtype=np.complex128)
    if zeta.shape[-1] != tableau.stages:
        raise ValueError(
            f"zeta has last axis {zeta.shape[-1]}, expected the number of stages {tableau.stages}"
        )
    m = tableau.stages
    mat = np.eye(m) - a[None] * zeta.reshape(-1, 1, m)  # a diag(zeta): scale columns
    sol = np.linalg.solve(mat, np.ones((mat.shape[0], m, 1)))[..., 0]
    k = 1.0 + np.einsum("j,nj,nj->n", b, zeta.reshape(-1, m), sol)
    return k.reshape(zeta.shape[:-1])


def rk_lipschitz_bound(tableau: ButcherTableau, h: float, lip_f: float) -> float:
    """A crude Lipschitz bound of one explicit RK step for an ``lip_f``-Lipschitz field.

    Stage bounds :math:`\\lambda_i = 1 + h\\ell\\sum_{j<i}|a_{ij}|\\lambda_j` and
    :math:`\\mathrm{Lip}(\\Phi_h)\\le 1 + h\\ell\\sum_i|b_i|\\lambda_i` (triangle inequality).
    Used as a valid fallback certificate where the nonexpansive step rule does not hold.
    """
    tableau = get_tableau(tableau)
    if not tableau.explicit:
        raise ValueError(f"rk_lipschitz_bound: tableau {tableau.name!r} is not explicit")
    a, b = tableau.arrays()
    lam: list[float] = []
    for i in range(tableau.stages):
        lam.append(1.0 + h * lip_f * sum(abs(a[i, j]) * lam[j] for j in range(i)))
    return 1.0 + h * lip_f * sum(abs(b[i]) * lam[i] for i in range(tableau.stages))
