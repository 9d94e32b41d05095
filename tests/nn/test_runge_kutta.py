"""Circle-contractivity radius (Remark 3.2.1) against Definition 3.2.2, and RK bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinv.nn.runge_kutta import (
    EULER,
    HEUN,
    RALSTON,
    RK4,
    ButcherTableau,
    circle_contractivity_radius,
    get_tableau,
    rk_lipschitz_bound,
    stability_function,
)


@pytest.mark.parametrize("tab", [EULER, HEUN, RK4])
def test_radius_is_one_for_euler_heun_rk4(tab):
    assert circle_contractivity_radius(tab) == pytest.approx(1.0, abs=1e-12)


def _max_abs_k_on_boundary(tab, r, n=20000, seed=0):
    """Max of |K| over random points of the distinguished boundary of D(r)^m (the maximum
    modulus principle puts the max over the polydisc there)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, (n, tab.stages))
    zeta = -r + r * np.exp(1j * theta)
    # include equal-entry points (the linear autonomous case) on a fine grid
    t = np.linspace(0, 2 * np.pi, 721)
    diag = np.repeat((-r + r * np.exp(1j * t))[:, None], tab.stages, axis=1)
    return max(np.abs(stability_function(tab, zeta)).max(),
               np.abs(stability_function(tab, diag)).max())


@pytest.mark.parametrize("tab", [EULER, HEUN, RALSTON, RK4])
def test_radius_is_optimal_per_definition(tab):
    r = circle_contractivity_radius(tab)
    assert _max_abs_k_on_boundary(tab, r) <= 1.0 + 1e-9  # contractive on D(r)^m
    assert _max_abs_k_on_boundary(tab, 1.1 * r) > 1.0 + 1e-6  # and not on a bigger disk


def test_ralston_has_known_smaller_radius():
    # closed form: min generalised eigenvalue of [[-1/4, 5/(4 sqrt 3)], [., -3/4]]
    rho = (-1 - math.sqrt(1 - 4 * (0.25 * 0.75 - 25 / 48))) / 2
    assert circle_contractivity_radius(RALSTON) == pytest.approx(-1 / rho, rel=1e-10)
    assert circle_contractivity_radius(RALSTON) < 0.8


def test_two_half_euler_steps_have_radius_two():
    tab = ButcherTableau.from_lists([[0, 0], [0.5, 0]], [0.5, 0.5])
    assert circle_contractivity_radius(tab) == pytest.approx(2.0)


def test_special_cases():
    midpoint = ButcherTableau.from_lists([[0, 0], [0.5, 0]], [0, 1])
    assert circle_contractivity_radius(midpoint) == 0.0
    implicit_midpoint = ButcherTableau.from_lists([[0.5]], [1])
    assert circle_contractivity_radius(implicit_midpoint) == math.inf
    backward_euler = ButcherTableau.from_lists([[1]], [1])
    assert circle_contractivity_radius(backward_euler) == pytest.approx(-1.0)
    assert not backward_euler.explicit and RK4.explicit


def test_bad_tableaux_raise():
    with pytest.raises(ValueError, match="sum"):
        ButcherTableau.from_lists([[0]], [0.5])
    with pytest.raises(ValueError, match="matrix"):
        ButcherTableau.from_lists([[0, 0]], [1])
    with pytest.raises(ValueError, match="method"):
        get_tableau("rk45")


def test_rk_lipschitz_bound_is_valid_for_linear_fields():
    # for f(z) = -l z the RK step is multiplication by K(-h l); the bound must dominate it
    for tab in (EULER, HEUN, RK4):
        for hl in (0.5, 2.0, 5.0):
            k = abs(stability_function(tab, np.full(tab.stages, -hl)))
            assert k <= rk_lipschitz_bound(tab, hl, 1.0) + 1e-12
