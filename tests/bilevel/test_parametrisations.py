"""Parametrisations (App. 1.A), chain rule and the sparsity penalty (Sec. 1.2.2)."""

import numpy as np
import pytest
import torch

from spinv.bilevel.implicit import SolverOptions, synthetic_image
from spinv.bilevel.learn import BilevelObjective
from spinv.bilevel.lower_level import LowerLevel, make_regulariser
from spinv.bilevel.parametrisations import (
    CartesianLines,
    DifferentiablePattern,
    FixedPattern,
    FreePattern,
    sampling_rate,
    sparsity_penalty,
)


def test_penalty_value_and_gradient():
    p = torch.rand(50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    val, grad = sparsity_penalty(p, 0.3)
    assert float(val) == pytest.approx(0.3 * float((p + p * (1 - p)).sum()))
    d = torch.randn(50, dtype=torch.float64)
    h = 1e-6
    fd = (sparsity_penalty(p + h * d, 0.3)[0] - sparsity_penalty(p - h * d, 0.3)[0]) / (2 * h)
    assert float(fd) == pytest.approx(float((grad * d).sum()), rel=1e-8)
    # binary and sparse patterns are favoured: P(0) = 0 < P(1/2) per unit of mass
    assert float(sparsity_penalty(torch.tensor([0.5, 0.5]), 1.0)[0]) > float(
        sparsity_penalty(torch.tensor([1.0, 0.0]), 1.0)[0]
    )
    with pytest.raises(ValueError, match="beta"):
        sparsity_penalty(p, -1.0)


def _problem():
    u = synthetic_image(12, 1, batch=2)
    return LowerLevel.from_images(u, make_regulariser("tv", gamma=0.05), noise=0.02, eps=1e-2)


def _radial():
    r = torch.linspace(-1, 1, 12, dtype=torch.float64)
    rr = (r[:, None] ** 2 + r[None, :] ** 2).sqrt()

    def fn(t):
        return 0.1 + 0.85 * torch.exp(-((rr / t[0]) ** 2)) * torch.sigmoid(t[1])

    return fn


PARAMS = {
    "free": lambda: FreePattern((12, 12), alpha_scale=1e-2),
    "lines": lambda: CartesianLines((12, 12), axis=1, alpha_scale=1e-2),
    "rows": lambda: CartesianLines((12, 12), axis=0, alpha_scale=1e-2),
    "power-lines": lambda: CartesianLines((12, 12), axis=1, alpha_scale=1e-2, weights="power"),
    "fixed": lambda: FixedPattern(torch.full((12, 12), 0.6), alpha_scale=1e-2),
    "smooth": lambda: DifferentiablePattern((12, 12), _radial(), 2, alpha_scale=1e-2),
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_chain_rule_of_the_full_objective(name):
    """Objective (loss + penalty) gradient in lambda vs central differences."""
    par = PARAMS[name]()
    ll = _problem()
    obj = BilevelObjective(ll, par, beta=1e-3, opts=SolverOptions(tol=1e-13, cg_tol=1e-13))
    g = torch.Generator().manual_seed(2)
    lam = np.concatenate(
        [0.3 + 0.5 * torch.rand(par.n_pattern, generator=g, dtype=torch.float64).numpy(), [1.5]]
    )
    _, grad = obj(lam)
    d = torch.randn(lam.size, generator=g, dtype=torch.float64).numpy()
    h = 1e-6
    fd = (obj(lam + h * d)[0] - obj(lam - h * d)[0]) / (2 * h)
    assert float(grad @ d) == pytest.approx(fd, rel=1e-6)


def test_bounds_and_initialisation():
    par = FreePattern((4, 5), alpha_scale=1e-3)
    assert par.n_params == 21 and par.bounds()[0] == (0.0, 1.0) and par.bounds()[-1] == (0.0, None)
    s, alpha = par(par.initial(2e-3))
    assert float(s.min()) == 1.0 and alpha == pytest.approx(2e-3)
    fixed = FreePattern((4, 5), alpha=0.0)
    assert fixed.n_params == 20 and fixed(torch.ones(20, dtype=torch.float64))[1] == 0.0
    with pytest.raises(ValueError, match="lam has shape"):
        par(torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="axis"):
        CartesianLines((4, 4), axis=2)
    with pytest.raises(ValueError, match="mask"):
        FixedPattern(torch.full((4, 4), 2.0))


def test_sampling_rate_counts_nonzero_weights():
    s = torch.tensor([[0.0, 0.2], [1.0, 0.0]])
    assert sampling_rate(s) == 0.5 and sampling_rate(s, threshold=0.5) == 0.25


def test_power_lines_gradient_at_a_pruned_line():
    """At a zero line the amplitude gradient of the loss vanishes (the line can never come
    back), the power (data-weight) gradient equals the one-sided difference quotient."""
    ll = _problem()
    opts = SolverOptions(tol=1e-13, cg_tol=1e-13)
    lam = np.concatenate([np.linspace(0.3, 0.9, 12), [1.5]])
    lam[[0, 5]] = 0.0
    amp = BilevelObjective(ll, CartesianLines((12, 12), alpha_scale=1e-2), beta=0.0, opts=opts)
    assert amp(lam)[1][5] == 0.0
    powr = CartesianLines((12, 12), alpha_scale=1e-2, weights="power")
    obj = BilevelObjective(ll, powr, beta=0.0, opts=opts)
    s, _ = powr(torch.as_tensor(lam))
    torch.testing.assert_close(s[:, 3], torch.full((12,), float(np.sqrt(lam[3])), dtype=s.dtype))
    value, grad = obj(lam)
    h = 1e-7
    step = np.zeros_like(lam)
    step[5] = h
    fd = (obj(lam + step)[0] - value) / h
    assert grad[5] < 0 and grad[5] == pytest.approx(fd, rel=1e-4)
    with pytest.raises(ValueError, match="weights"):
        CartesianLines((4, 4), weights="squared")
