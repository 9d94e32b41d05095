"""rho_gamma: values, derivatives vs finite differences, phi/psi identities, prox optimality."""

import pytest
import torch

from spinv.variational.rho import HuberRho, QuadraticRho, Rho

D = torch.float64


def _grid(gamma):
    return torch.cat(
        [
            torch.linspace(0, 3 * gamma, 301, dtype=D),
            torch.tensor([gamma * (1 - 1e-9), gamma * 1.5, 10.0], dtype=D),
        ]
    )


@pytest.mark.parametrize("gamma", [1e-2, 0.3])
def test_huber_piecewise_and_derivatives(gamma):
    rho = HuberRho(gamma)
    x = _grid(gamma)
    inside = -(x**3) / (3 * gamma**2) + x**2 / gamma
    outside = x - gamma / 3
    ref = torch.where(x <= gamma, inside, outside)
    assert torch.allclose(rho.value(x), ref, atol=1e-14)
    assert torch.allclose(rho.value(-x), ref, atol=1e-14)  # even
    h = 1e-6 * gamma
    xx = x[1:]  # keep away from 0 for the kink-free central differences
    fd1 = (rho.value(xx + h) - rho.value(xx - h)) / (2 * h)
    assert torch.allclose(rho.derivative(xx), fd1, atol=1e-7)
    fd2 = (rho.derivative(xx + h) - rho.derivative(xx - h)) / (2 * h)
    assert torch.allclose(rho.second_derivative(xx), fd2, atol=1e-5 / gamma)
    # phi = rho'/x, psi = phi'/x
    assert torch.allclose(rho.phi(xx) * xx, rho.derivative(xx), atol=1e-12)
    fdphi = (rho.phi(xx + h) - rho.phi(xx - h)) / (2 * h)
    assert torch.allclose(rho.psi(xx) * xx, fdphi, rtol=1e-5, atol=1e-4 / gamma**2)
    assert float(rho.phi(torch.zeros(1, dtype=D))) == pytest.approx(2 / gamma)
    assert float(rho.psi(torch.zeros(1, dtype=D))) == 0.0
    # C^2: continuity of value, rho', rho'' at gamma
    g = torch.tensor([gamma * (1 - 1e-12), gamma * (1 + 1e-12)], dtype=D)
    for f in (rho.value, rho.derivative, rho.second_derivative):
        v = f(g)
        assert abs(float(v[0] - v[1])) < 1e-8


@pytest.mark.parametrize("rho", [HuberRho(0.05), HuberRho(1.0), QuadraticRho()])
@pytest.mark.parametrize("t", [1e-3, 0.1, 5.0])
def test_prox_magnitude_solves_optimality(rho, t):
    r = torch.cat([torch.linspace(0, 2, 401, dtype=D), torch.tensor([0.05 + t, 50.0], dtype=D)])
    c = rho.prox_magnitude(r, t)
    assert (c >= 0).all() and (c <= r + 1e-15).all()
    residual = (1 + t * rho.phi(c)) * c - r
    assert residual.abs().max() < 1e-10
    # it also minimises t*rho(C) + (C - r)^2/2 among nearby candidates
    obj = lambda z: t * rho.value(z) + 0.5 * (z - r) ** 2  # noqa: E731
    for d in (1e-4, -1e-4):
        assert (obj(c) <= obj((c + d).clamp(min=0)) + 1e-14).all()


def test_smoothness_bounds():
    rho = HuberRho(0.1)
    x = torch.linspace(0, 1, 10001, dtype=D)
    assert rho.smoothness(bound="tight") == pytest.approx(20.0)
    assert float(rho.second_derivative(x).max()) <= rho.smoothness() + 1e-12
    assert rho.smoothness(components=4, bound="thesis") >= rho.smoothness()
    with pytest.raises(ValueError, match="bound"):
        rho.smoothness(bound="x")
    with pytest.raises(ValueError, match="gamma"):
        HuberRho(-1.0)


def test_no_boolean_indexing_and_dtype_preserved():
    rho = HuberRho(0.1)
    x = torch.rand(4, 5, dtype=torch.float32)
    for f in (rho.value, rho.derivative, rho.second_derivative, rho.phi, rho.psi):
        y = f(x)
        assert y.shape == x.shape and y.dtype == torch.float32


@pytest.mark.parametrize("sigma,alpha", [(0.3, 0.01), (5.0, 0.2), (1e-3, 1.0)])
def test_closed_form_dual_factor_matches_moreau(sigma, alpha):
    rho = HuberRho(0.05)
    r = torch.cat(
        [torch.linspace(0, 3, 601, dtype=D), torch.tensor([sigma * 0.05 + alpha], dtype=D)]
    )
    fast = rho.dual_factor(r.clone(), sigma, alpha)
    generic = Rho.dual_factor(rho, r.clone(), sigma, alpha)
    # at r = 0 (q = 0) the factor is irrelevant; the closed form returns the limit 1 - 1/b
    assert torch.allclose(fast[1:], generic[1:], atol=1e-12)
    # the dual variable stays in the alpha-ball: |prox_{sigma F*}(q)| = f(r) r <= alpha
    assert float((fast * r).max()) <= alpha * (1 + 1e-12)
