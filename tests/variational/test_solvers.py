"""Solvers: closed-form solutions, linear convergence rate of PDHG, agreement between solvers."""

import math

import numpy as np
import pytest
import torch

from spinv.operators import Identity
from spinv.variational import gradient, gradient_adjoint
from spinv.variational.regularisers import abs2, batch_sum, h1, smoothed_tv
from spinv.variational.solvers import (
    Armijo,
    FISTAOptions,
    LeastSquaresBlock,
    PDHGOptions,
    RegulariserBlock,
    fista,
    newton_cg,
    pdhg,
    pgd,
)
from spinv.variational.solvers.pdhg import step_sizes
from spinv.variational.tv import TV

D = torch.float64


def _f(shape=(2, 1, 8, 8), seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def _h1_closed_form(f, alpha, eps):
    """(1 + eps) u + alpha grad* grad u = f, by a dense solve of the assembled matrix."""
    _, _, h, w = f.shape
    eye = torch.eye(h * w, dtype=D).reshape(h * w, 1, h, w)
    L = gradient_adjoint(gradient(eye)).reshape(h * w, h * w)
    M = (1 + eps) * torch.eye(h * w, dtype=D) + alpha * L
    sol = torch.linalg.solve(M, f.reshape(f.shape[0], -1).T).T
    return sol.reshape(f.shape)


def test_pdhg_reaches_closed_form_h1():
    f = _f()
    alpha, eps = 0.7, 0.1
    ref = _h1_closed_form(f, alpha, eps)
    blocks = [LeastSquaresBlock(Identity(), f), RegulariserBlock(h1(alpha))]
    u, hist = pdhg(blocks, torch.zeros_like(f), PDHGOptions(iterations=3000, tol=1e-13),
                   epsilon=eps)
    assert hist.extra["rule"] == "strongly_convex"
    assert (u - ref).abs().max() < 1e-9
    assert hist.iterations == len(hist.objective) == len(hist.residual) == len(hist.time)
    assert hist.time == sorted(hist.time)


def test_pdhg_linear_convergence_rate_bound():
    # Appendix 1.C.2: ||u_k - u*||^2 = O((1 + mu)^-k)  =>  slope of log||u_k - u*|| <= log(rate)/2
    f = _f((1, 1, 12, 12), 1)
    alpha, eps = 0.5, 0.2
    ref = _h1_closed_form(f, alpha, eps)
    blocks = [LeastSquaresBlock(Identity(), f), RegulariserBlock(h1(alpha))]
    errs = []
    pdhg(
        blocks,
        torch.zeros_like(f),
        PDHGOptions(iterations=400, tol=0.0),
        epsilon=eps,
        callback=lambda k, u: errs.append(float((u - ref).norm())),
    )
    steps = step_sizes(blocks, eps, "strongly_convex")
    errs = np.array(errs)
    k = np.arange(20, 400)
    k = k[errs[k] > 1e-11]  # stay above the float64 floor
    assert len(k) > 50
    slope = np.polyfit(k, np.log(errs[k]), 1)[0]
    bound = 0.5 * math.log(steps["rate"])
    assert slope < 0
    assert slope <= 0.95 * bound, (slope, bound)
    # the parameters satisfy tau * sigma * ||K||^2 <= 1 and theta = 1/(1+mu)
    assert steps["tau"] * steps["sigma"] * steps["op_norm"] ** 2 <= 1 + 1e-12
    assert steps["theta"] == pytest.approx(1 / (1 + steps["mu"]))


def test_pdhg_tv_matches_fista_dual_prox_and_is_batched():
    f = _f((2, 1, 8, 8), 2)
    tv = TV(0.4)
    u_pdhg, h = pdhg(
        [LeastSquaresBlock(Identity(), f), RegulariserBlock(tv)], f,
        PDHGOptions(iterations=1500, tol=1e-10),
    )
    assert h.extra["rule"] == "standard"
    u_prox = tv.prox(f, 1.0, iterations=1500, tol=1e-12)
    assert (u_pdhg - u_prox).abs().max() < 1e-4
    one, _ = pdhg(
        [LeastSquaresBlock(Identity(), f[1:]), RegulariserBlock(tv)],
        f[1:],
        PDHGOptions(iterations=h.iterations, tol=0.0),
    )
    assert (one - u_pdhg[1:]).abs().max() < 1e-10  # batching does not change the iterates


def test_pdhg_accelerated_rule_and_float32():
    f = _f((1, 1, 10, 10), 3, dtype=torch.float32)
    tv = TV(0.3)
    u, h = pdhg(
        [LeastSquaresBlock(Identity(), f), RegulariserBlock(tv)],
        f,
        PDHGOptions(iterations=600, tol=1e-6),
        epsilon=0.05,
    )
    assert h.extra["rule"] == "accelerated" and u.dtype == torch.float32
    ref = TV(0.3).prox(f.double() / 1.05, 1.0 / 1.05, iterations=3000, tol=1e-13)
    # min 1/2|u-f|^2 + eps/2|u|^2 + TV = prox of TV/(1+eps) at f/(1+eps)
    assert (u.double() - ref).abs().max() < 1e-3


def test_smoothed_tv_pdhg_agrees_with_newton_cg_complex():
    g = torch.Generator().manual_seed(4)
    f = torch.complex(
        torch.randn(1, 1, 10, 10, generator=g, dtype=D),
        torch.randn(1, 1, 10, 10, generator=g, dtype=D),
    )
    reg = smoothed_tv(0.3, gamma=0.1)
    eps = 0.05
    u_pd, _ = pdhg(
        [LeastSquaresBlock(Identity(), f), RegulariserBlock(reg)],
        torch.zeros_like(f),
        PDHGOptions(iterations=5000, tol=1e-13),
        epsilon=eps,
    )

    def energy(u):
        return 0.5 * batch_sum(abs2(u - f)) + reg.value(u) + 0.5 * eps * batch_sum(abs2(u))

    def grad(u):
        return u - f + reg.gradient(u) + eps * u

    def hvp(u, v):
        return v + reg.hvp(u, v) + eps * v

    u_nt, hist = newton_cg(energy, grad, hvp, torch.zeros_like(f), iterations=50, tol=1e-10)
    assert hist.converged
    assert grad(u_nt).abs().max() < 1e-9
    assert (u_pd - u_nt).abs().max() < 1e-7
    # Newton is superlinear: far fewer outer iterations than PDHG
    assert hist.iterations < 30


@pytest.mark.parametrize("backtracking", [False, True])
def test_fista_and_pgd_reach_h1_closed_form(backtracking):
    f = _f((2, 1, 8, 8), 5)
    alpha, eps = 0.3, 0.0
    ref = _h1_closed_form(f, alpha, eps)
    reg = h1(alpha)

    def obj(u):
        return 0.5 * batch_sum((u - f) ** 2) + reg.value(u)

    def grad(u):
        return u - f + reg.gradient(u)

    L = 1 + alpha * 8
    lipschitz = None if backtracking else L
    options = FISTAOptions(iterations=2000, tol=1e-14, backtracking=backtracking)
    u, h = fista(obj, grad, torch.zeros_like(f), options, lipschitz=lipschitz)
    assert (u - ref).abs().max() < 1e-8
    options = FISTAOptions(iterations=3000, tol=1e-14, backtracking=backtracking)
    u2, h2 = pgd(obj, grad, torch.zeros_like(f), options, lipschitz=lipschitz)
    assert (u2 - ref).abs().max() < 1e-8
    # PGD with step <= 1/L decreases the objective monotonically
    assert all(b <= a + 1e-12 for a, b in zip(h2.objective, h2.objective[1:], strict=False))
    if backtracking:
        assert max(h.extra["lipschitz"]) <= 2 * L


def test_fista_with_tv_prox_matches_pdhg():
    f = _f((1, 1, 8, 8), 6)
    tv = TV(0.25)
    state = {}

    def prox(v, step):
        out, state["p"] = tv.prox(
            v, step, p0=state.get("p"), return_dual=True, tol=1e-12, iterations=300
        )
        return out

    # data term 1/2|Au - f|^2 with A = I/2 (L = 1/4), so FISTA needs several outer steps
    obj = lambda u: 0.5 * batch_sum((0.5 * u - f) ** 2)  # noqa: E731
    u, h = fista(
        obj,
        lambda u: 0.5 * (0.5 * u - f),
        f.clone(),
        FISTAOptions(iterations=60, tol=1e-12),
        lipschitz=0.25,
        prox_g=prox,
        g=tv.value,
    )
    # reference: the same problem by PDHG with the data operator A = I/2
    from spinv.variational.reconstruct import ScaledOperator

    u_ref, _ = pdhg(
        [LeastSquaresBlock(ScaledOperator(Identity(), 2.0), f, op_norm=0.5), RegulariserBlock(tv)],
        f.clone(),
        PDHGOptions(iterations=3000, tol=1e-12),
    )
    assert (u - u_ref).abs().max() < 1e-6


def test_warm_start_converges_immediately():
    f = _f((1, 1, 8, 8), 7)
    blocks = [LeastSquaresBlock(Identity(), f), RegulariserBlock(h1(0.5))]
    u, v, h = pdhg(blocks, torch.zeros_like(f), PDHGOptions(iterations=3000, tol=1e-12),
                   epsilon=0.1, return_dual=True)
    _, h2 = pdhg(blocks, u, PDHGOptions(iterations=3000, tol=1e-10), epsilon=0.1, v0=v)
    assert h2.iterations <= 3 < h.iterations


def test_bad_arguments():
    f = _f()
    blocks = [LeastSquaresBlock(Identity(), f), RegulariserBlock(TV(0.1))]
    with pytest.raises(ValueError, match="step_rule"):
        PDHGOptions(step_rule="fast")
    with pytest.raises(ValueError, match="strongly_convex"):
        pdhg(blocks, f, PDHGOptions(step_rule="strongly_convex"), epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon"):
        pdhg(blocks, f, PDHGOptions(step_rule="accelerated"))
    with pytest.raises(ValueError, match="PDHGOptions.iterations=-1"):
        PDHGOptions(iterations=-1)
    for bad in (dict(tol=-1.0), dict(tau=0.0), dict(theta=-0.5), dict(op_norm=float("nan")),
                dict(check_every=0)):
        with pytest.raises(ValueError, match=f"PDHGOptions.{next(iter(bad))}"):
            PDHGOptions(**bad)
    with pytest.raises(TypeError, match="PDHGOptions"):
        pdhg(blocks, f, {"iterations": 3})
    with pytest.raises(TypeError, match="iterations"):  # the knobs are not keywords any more
        pdhg(blocks, f, iterations=3)
    with pytest.raises(ValueError, match="lipschitz"):
        fista(lambda u: u.sum(), lambda u: u, f)
    for bad in (dict(iterations=-1), dict(tol=-1.0), dict(eta=1.0)):
        with pytest.raises(ValueError, match=f"FISTAOptions.{next(iter(bad))}"):
            FISTAOptions(**bad)
    with pytest.raises(ValueError, match="factor"):
        newton_cg(lambda u: u.sum(), lambda u: u, lambda u, v: v, f, line_search=Armijo(2.0))
    with pytest.raises(ValueError, match="max_steps"):
        Armijo(max_steps=-1)


def test_fourier_block_matches_generic_least_squares_block():
    from spinv.operators import SubsampledFourier
    from spinv.variational.solvers import FourierDataBlock

    g = torch.Generator().manual_seed(8)
    mask = (torch.rand(12, 12, generator=g) < 0.4).to(D)
    A = SubsampledFourier(mask)
    x = torch.complex(
        torch.rand(2, 1, 12, 12, generator=g, dtype=D), torch.zeros(2, 1, 12, 12, dtype=D)
    )
    y = A(x)
    reg = RegulariserBlock(smoothed_tv(1e-2, 0.05))
    options = PDHGOptions(iterations=3000, tol=1e-12)
    u_f, hf = pdhg([FourierDataBlock(A.mask, y), reg], A.adjoint(y), options, epsilon=1e-2)
    u_g, _ = pdhg([LeastSquaresBlock(A, y, op_norm=1.0), reg], A.adjoint(y), options,
                  epsilon=1e-2)
    assert hf.extra["rule"] == "strongly_convex"
    assert (u_f - u_g).abs().max() < 1e-8
    # the objective of the Fourier block is the data term 1/2 ||S F u - y||^2
    blk = FourierDataBlock(A.mask, y)
    assert torch.allclose(blk.value(u_f), 0.5 * batch_sum(abs2(A(u_f) - y)))


def test_objective_tracking_does_not_change_the_iterates():
    f = _f((2, 1, 8, 8), 9)
    blocks = [LeastSquaresBlock(Identity(), f), RegulariserBlock(smoothed_tv(0.2, 0.1))]
    a, ha = pdhg(blocks, f, PDHGOptions(iterations=40, tol=0.0, track_objective=True),
                 epsilon=0.1)
    b, hb = pdhg(blocks, f, PDHGOptions(iterations=40, tol=0.0, track_objective=False),
                 epsilon=0.1)
    assert torch.allclose(a, b, atol=1e-12)
    assert np.allclose(ha.residual, hb.residual, rtol=1e-8)
    assert np.isnan(hb.objective).all() and np.isfinite(ha.objective).all()
    # the objective decreases overall towards the minimum
    assert ha.objective[-1] < ha.objective[0]
