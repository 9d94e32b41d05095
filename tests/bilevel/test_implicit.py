"""Implicit-differentiation gradients (Eq. 1.5) vs finite differences and unrolled autograd."""

import pytest
import torch

from spinv.bilevel.implicit import SolverOptions, check_gradient, loss_and_gradient, synthetic_image
from spinv.bilevel.lower_level import LowerLevel, make_regulariser


@pytest.mark.parametrize("kind,size", [("tv", 32), ("wavelet", 16), ("h1", 16), ("none", 16)])
def test_gradient_agrees_with_central_differences(kind, size):
    # >= 5 significant digits required; float64, lower level solved to 1e-13
    assert check_gradient(size=size, seed=0, regulariser=kind) < 1e-5


def test_check_gradient_default_signature():
    err = check_gradient(size=16, seed=1)
    assert 0 <= err < 1e-5


def _unrolled_loss(ll, s, alpha, iterations, step):
    """Gradient descent on E unrolled in autograd (differentiable in s and alpha)."""
    u = ll.zero_filled(s)
    for _ in range(iterations):
        u = u - step * ll.gradient(u, s, alpha)
    d = u - ll.u_true
    return 0.5 * (d.real.square() + d.imag.square()).sum() / ll.y.shape[0], u


@pytest.mark.parametrize("kind", ["tv", "h1"])
def test_gradient_agrees_with_autograd_through_unrolled_solver(kind):
    u_true = synthetic_image(12, 3, batch=2)
    reg = make_regulariser(kind, gamma=0.1)
    ll = LowerLevel.from_images(u_true, reg, noise=0.02, eps=0.2, seed=3)
    g = torch.Generator().manual_seed(4)
    s0 = 0.3 + 0.6 * torch.rand(12, 12, generator=g, dtype=torch.float64)
    alpha0 = 0.01
    # smoothness: max s^2 + alpha * ||D^2 J|| * ||A||^2 + eps
    lip = 1.0 + alpha0 * reg.smoothness() * 8 + ll.eps
    s = s0.clone().requires_grad_(True)
    a = torch.tensor(alpha0, dtype=torch.float64, requires_grad=True)
    loss, u_unrolled = _unrolled_loss(ll, s, a, 700, 1.0 / lip)
    loss.backward()
    opts = SolverOptions(tol=1e-13, cg_tol=1e-13, maxit=100)
    lg = loss_and_gradient(ll, s0, alpha0, opts)
    # the unrolled iterate has converged, so the two gradients describe the same map
    assert float((u_unrolled.detach() - lg.u).abs().max()) < 1e-10
    rel_s = float((s.grad - lg.grad_s).norm() / lg.grad_s.norm())
    rel_a = abs(float(a.grad) - lg.grad_alpha) / abs(lg.grad_alpha)
    assert rel_s < 1e-6 and rel_a < 1e-6


def test_pdhg_gradient_converges_to_newton_gradient():
    """Eq. 1.6: the gradient at a PDHG iterate approaches the exact one as tol decreases."""
    u_true = synthetic_image(16, 5)
    ll = LowerLevel.from_images(u_true, make_regulariser("tv"), noise=0.02, eps=1e-2, seed=5)
    s = (torch.rand(16, 16, generator=torch.Generator().manual_seed(6)) > 0.5).double()
    ref = loss_and_gradient(ll, s, 0.01, SolverOptions(tol=1e-13, cg_tol=1e-13))
    errs = []
    for tol in (1e-4, 1e-7, 1e-10):
        opts = SolverOptions(method="pdhg", tol=tol, maxit=50000, cg_tol=1e-13)
        lg = loss_and_gradient(ll, s, 0.01, opts)
        errs.append(float((lg.grad_s - ref.grad_s).norm() / ref.grad_s.norm()))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-5


def test_solver_options_validation():
    with pytest.raises(ValueError, match="method='lbfgs'"):
        SolverOptions(method="lbfgs")


def test_autograd_function_matches_loss_and_gradient():
    from spinv.bilevel.implicit import solve_lower_level

    u_true = synthetic_image(16, 2, batch=2)
    ll = LowerLevel.from_images(u_true, make_regulariser("tv"), noise=0.02, eps=1e-2, seed=2)
    s0 = torch.rand(16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opts = SolverOptions(tol=1e-12, cg_tol=1e-12)
    s = s0.clone().requires_grad_(True)
    a = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    u = solve_lower_level(ll, s, a, opts)
    d = u - ll.u_true
    (0.5 * (d.real.square() + d.imag.square()).sum() / 2).backward()
    ref = loss_and_gradient(ll, s0, 0.01, opts)
    torch.testing.assert_close(s.grad, ref.grad_s, rtol=1e-8, atol=1e-12)
    assert abs(float(a.grad) - ref.grad_alpha) <= 1e-8 * abs(ref.grad_alpha)
