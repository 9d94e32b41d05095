"""PDHG (Algorithm 1) and Newton-CG (Algorithm 2) solve the same lower-level problem."""

import math

import pytest
import torch

from spinv.bilevel.newton_cg import newton_cg
from spinv.bilevel.pdhg import pdhg, pdhg_parameters
from spinv.linalg import conjugate_gradient, inner


def _rel(a, b):
    return float(((a - b).abs().pow(2).sum() / b.abs().pow(2).sum()).sqrt())


@pytest.mark.parametrize("kind", ["tv", "wavelet", "h1"])
def test_pdhg_converges_to_newton_solution(make_problem, kind, rp):
    ll = make_problem(kind, size=16, eps=1e-2)
    s = (rp(16, seed=1) > 0.5).double()
    alpha = 0.01
    ref = newton_cg(ll, s, alpha, gtol=1e-12)
    assert ref.grad_norm < 1e-10
    res = pdhg(ll, s, alpha, tol=1e-10, maxit=20000)
    assert res.converged
    assert _rel(res.u, ref.u) < 1e-6
    assert ll.energy(res.u, s, alpha).sum() >= ll.energy(ref.u, s, alpha).sum() - 1e-9


def test_pdhg_step_sizes_follow_appendix(make_problem, rp):
    ll = make_problem("tv", eps=1e-2)
    s = rp(16)
    tau, sigma, theta = pdhg_parameters(ll, s, 0.01)
    # tau * sigma * (1 + L^2) = 1 and theta = 1 / (1 + mu) with mu = 2 sqrt(eps / ((1+L^2) eta))
    assert math.isclose(tau * sigma * 9.0, 1.0, rel_tol=1e-12)
    mu = 2 * tau * ll.eps
    assert math.isclose(theta, 1 / (1 + mu), rel_tol=1e-12)


def test_pdhg_warm_start_needs_fewer_iterations(make_problem, rp):
    ll = make_problem("tv", eps=1e-2)
    s = rp(16)
    cold = pdhg(ll, s, 0.01, tol=1e-8, maxit=20000)
    warm = pdhg(ll, s * 0.99, 0.01, state=cold.state, tol=1e-8, maxit=20000)
    assert warm.iterations < cold.iterations


def test_prox_of_f2_solves_its_optimality_condition():
    from spinv.variational.rho import HuberRho

    rho = HuberRho(0.05)
    a = torch.linspace(0, 1, 101, dtype=torch.float64)
    c = rho.prox_magnitude(a, 0.1)
    torch.testing.assert_close((1 + 0.1 * rho.phi(c)) * c, a)


@pytest.mark.parametrize("precondition", [True, False])
def test_cg_solves_hessian_system(make_problem, precondition, rp):
    ll = make_problem("tv")
    s, alpha = rp(16), 0.02
    u = ll.zero_filled(s)
    b = ll.u_true.to(u.dtype)
    pre = ll.preconditioner(u, s, alpha) if precondition else None
    res = conjugate_gradient(lambda v: ll.hvp(u, v, s, alpha), b, rtol=1e-11,
                             max_iterations=1000, preconditioner=pre)
    r = ll.hvp(u, res.x, s, alpha) - b
    assert float((inner(r, r) / inner(b, b)).sqrt().max()) < 1e-10
    assert res.iterations > 0 and res.converged


def test_preconditioning_reduces_cg_iterations(make_problem, rp):
    ll = make_problem("tv", size=32, eps=1e-4)
    s = (rp(32, seed=2) > 0.6).double()
    its = [newton_cg(ll, s, 0.01, gtol=1e-9, precondition=p).cg_iterations for p in (True, False)]
    assert its[0] < its[1]


def test_newton_is_batched(make_problem, rp):
    ll = make_problem("tv", batch=3)
    s = rp(16)
    both = newton_cg(ll, s, 0.01, gtol=1e-11).u
    one = newton_cg(ll.subset(slice(1, 2)), s, 0.01, gtol=1e-11).u
    assert _rel(both[1:2], one) < 1e-8
    assert torch.is_tensor(both) and both.shape == (3, 1, 16, 16)


@pytest.mark.parametrize("fused", [True, False])
def test_pdhg_has_the_iterates_of_the_variational_pdhg(make_problem, rp, fused):
    # bilevel.pdhg is a specialised copy of variational.solvers.pdhg (its module docstring says
    # why): same splitting, same steps, same iterates
    from spinv.variational.regularisers import smoothed_tv
    from spinv.variational.solvers import (
        FourierDataBlock,
        PDHGOptions,
        RegulariserBlock,
        fast_pdhg,
    )
    from spinv.variational.solvers import pdhg as generic_pdhg

    ll = make_problem("tv", gamma=0.05)
    s, alpha = rp(16), 0.02
    steps = pdhg_parameters(ll, s, alpha)
    blocks = [FourierDataBlock(s, s * ll.y), RegulariserBlock(smoothed_tv(alpha, 0.05))]
    for n in (1, 7, 60):
        ours = pdhg(ll, s, alpha, maxit=n, tol=0.0, steps=steps)
        solve = fast_pdhg if fused else generic_pdhg
        options = PDHGOptions(tau=steps[0], sigma=steps[1], theta=steps[2], iterations=n,
                              tol=0.0)
        generic, hist = solve(blocks, ll.zero_filled(s), options, epsilon=ll.eps)
        assert hist.extra.get("fused", False) == fused
        assert ours.iterations == n
        assert _rel(ours.u, generic) < 1e-12


def test_newton_cg_reaches_the_minimiser_of_the_variational_newton_cg(make_problem, rp):
    # bilevel.newton_cg keeps its own conventions (relative tolerances, k-space preconditioner,
    # per-image line search; module docstring); on the same energy both find the same minimiser
    from spinv.variational.solvers import newton_cg as generic_newton_cg

    ll = make_problem("tv", gamma=0.05)
    s, alpha = rp(16), 0.02
    ours = newton_cg(ll, s, alpha, gtol=1e-12)
    generic, hist = generic_newton_cg(
        lambda u: ll.energy(u, s, alpha), lambda u: ll.gradient(u, s, alpha),
        lambda u, v: ll.hvp(u, v, s, alpha), ll.zero_filled(s), tol=1e-11)
    assert hist.converged
    assert _rel(ours.u, generic) < 1e-9
