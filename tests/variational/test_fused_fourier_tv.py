"""The fused PDHG path for Eq. (1.3) reproduces the generic PDHG iterates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spinv.operators import SubsampledFourier
from spinv.variational.regularisers import h1, smoothed_tv
from spinv.variational.rho import HuberRho, Rho
from spinv.variational.solvers import (
    FourierDataBlock,
    LeastSquaresBlock,
    PDHGOptions,
    RegulariserBlock,
    fast_pdhg,
    pdhg,
)
from spinv.variational.solvers.fused_fourier_tv import applicable

D = torch.float64


def _problem(batch=2, channels=1, h=12, w=10, dtype=D, seed=0, reg=None):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(h, w, generator=g) < 0.4).to(dtype)
    mask[0, 0] = 1.0
    A = SubsampledFourier(mask)
    x = torch.complex(
        torch.rand(batch, channels, h, w, generator=g, dtype=dtype),
        0.3 * torch.rand(batch, channels, h, w, generator=g, dtype=dtype),
    )
    noise = torch.complex(
        torch.randn(x.shape, generator=g, dtype=dtype),
        torch.randn(x.shape, generator=g, dtype=dtype),
    )
    y = A(x + 0.05 * noise)
    reg = RegulariserBlock(smoothed_tv(2e-2, 5e-2) if reg is None else reg)
    return [FourierDataBlock(A.mask, y), reg], A.adjoint(y)


def _both(blocks, u0, epsilon, v0=None, **options):
    """The fused and the generic path on the same problem, with ``PDHGOptions(**options)``."""
    opts = PDHGOptions(**options)
    a = fast_pdhg(blocks, u0, opts, epsilon=epsilon, v0=v0, return_dual=True)
    # the generic solver knows no fused path
    b = pdhg(blocks, u0, opts, epsilon=epsilon, v0=v0, return_dual=True)
    assert a[2].extra["fused"] and "fused" not in b[2].extra
    return a, b


def _close(a, b, tol):
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize("rule", ["strongly_convex", "accelerated", "standard"])
@pytest.mark.parametrize("shape", [(2, 1, 12, 10), (1, 2, 7, 9)])
def test_fused_iterates_equal_generic_path_float64(rule, shape):
    blocks, u0 = _problem(*shape)
    kw = dict(epsilon=1e-2, step_rule=rule, iterations=60, tol=0.0, track_objective=True)
    (xa, va, ha), (xb, vb, hb) = _both(blocks, u0, **kw)
    assert xa.shape == xb.shape and xa.dtype == xb.dtype == torch.complex128
    assert _close(xa, xb, 1e-12)
    for s, t in zip(va, vb, strict=True):
        assert s.shape == t.shape and _close(s, t, 1e-12)
    assert np.allclose(ha.residual, hb.residual, rtol=1e-9, atol=0)
    assert np.allclose(ha.objective, hb.objective, rtol=1e-12)
    assert ha.iterations == hb.iterations == 60


def test_fused_float32_and_epsilon_zero_and_h1():
    blocks, u0 = _problem(dtype=torch.float32, seed=3)
    (xa, _, _), (xb, _, _) = _both(blocks, u0, epsilon=1e-2, iterations=40, tol=0.0)
    assert xa.dtype == torch.complex64 and _close(xa, xb, 1e-5)
    blocks, u0 = _problem(seed=4)
    (xa, _, _), (xb, _, _) = _both(blocks, u0, epsilon=0.0, iterations=40, tol=0.0)
    assert _close(xa, xb, 1e-12)
    blocks, u0 = _problem(seed=5, reg=h1(0.1))  # QuadraticRho: the generic dual factor
    (xa, _, _), (xb, _, _) = _both(blocks, u0, epsilon=1e-2, iterations=40, tol=0.0)
    assert _close(xa, xb, 1e-12)


def test_fused_stops_like_generic_and_check_every_only_delays_the_stop():
    blocks, u0 = _problem(seed=1)
    kw = dict(iterations=3000, tol=1e-8, track_objective=False)
    (xa, _, ha), (xb, _, hb) = _both(blocks, u0, 1e-2, **kw)
    assert ha.converged and hb.converged and ha.iterations == hb.iterations
    assert ha.residual[-1] <= 1e-8 < ha.residual[-2]
    x10, h10 = fast_pdhg(blocks, u0, PDHGOptions(check_every=10, **kw), epsilon=1e-2)
    assert h10.converged and h10.iterations % 10 == 0
    assert ha.iterations <= h10.iterations < ha.iterations + 10
    assert math.isnan(h10.residual[0]) and h10.residual[-1] <= 1e-8
    # the fixed point is the same (the extra iterations only move x closer to it)
    assert _close(x10, xa, 1e-6)


def test_fused_warm_start_and_callback():
    blocks, u0 = _problem(seed=2)
    x, v, h = fast_pdhg(blocks, u0, PDHGOptions(iterations=3000, tol=1e-10), epsilon=1e-2,
                        return_dual=True)
    assert h.extra["fused"] and h.converged
    seen = []
    x2, h2 = fast_pdhg(blocks, x, PDHGOptions(iterations=50, tol=1e-9), v0=v, epsilon=1e-2,
                       callback=lambda k, z: seen.append(z))
    assert h2.extra["fused"] and h2.converged and h2.iterations <= 3
    assert len(seen) == h2.iterations and _close(seen[-1], x2, 0.0)
    # the callback gets fresh tensors (the solver reuses its buffers)
    (xa, va, _), (xb, vb, _) = _both(blocks, u0, v0=v, epsilon=1e-2, iterations=20, tol=0.0)
    assert _close(xa, xb, 1e-12) and _close(va[1], vb[1], 1e-12)


def test_fused_optimality_of_the_limit():
    """At the solution, grad E(u) = Re-part gradient of Eq. (1.3) vanishes (complex image)."""
    blocks, u0 = _problem(batch=1, seed=6)
    data, reg = blocks
    x, h = fast_pdhg(blocks, u0, PDHGOptions(iterations=5000, tol=1e-12), epsilon=1e-2)
    assert h.converged and h.extra["fused"]
    # gradient of 1/2 ||S F u - y||^2 + R(u) + eps/2 ||u||^2 (Wirtinger, real inner product)
    r = data.s * torch.fft.fft2(x, norm="ortho") - data.y
    g = torch.fft.ifft2(data.s * r, norm="ortho") + reg.reg.gradient(x) + 1e-2 * x
    assert float(g.abs().max()) < 1e-7


def test_applicable_refuses_what_the_fused_path_does_not_solve():
    blocks, u0 = _problem()
    assert applicable(blocks, u0)
    assert not applicable(blocks[::-1], u0)
    assert not applicable(blocks, u0.real)  # real start: generic path
    assert not applicable(blocks, u0.to(torch.complex64))
    assert not applicable(blocks, u0, g_prox=lambda x, t: x)
    assert not applicable(blocks, u0[:1])  # data batch does not broadcast to x0
    A = SubsampledFourier(torch.ones(12, 10, dtype=D))
    assert not applicable([LeastSquaresBlock(A, A(u0), op_norm=1.0), blocks[1]], u0)
    v2 = torch.zeros(2, 1, 2, 12, 10, dtype=torch.complex128)
    assert applicable(blocks, u0, v0=[torch.zeros_like(u0), v2])
    v2[..., 0, -1, 3] = 1.0  # nonzero where grad is zero: the generic path handles it
    assert not applicable(blocks, u0, v0=[torch.zeros_like(u0), v2])
    x, h = fast_pdhg(blocks, u0, PDHGOptions(iterations=3), v0=[torch.zeros_like(u0), v2],
                     epsilon=1e-2)
    assert not h.extra["fused"]
    u0g = u0.clone().requires_grad_(True)
    assert not applicable(blocks, u0g)
    with pytest.raises(ValueError, match="check_every"):
        PDHGOptions(check_every=0)


def test_huber_dual_factor_min_form_matches_generic_moreau():
    rho = HuberRho(0.05)
    r = torch.cat([torch.zeros(1, dtype=D), torch.logspace(-6, 1, 400, dtype=D)])
    for sigma, alpha in [(0.3, 0.02), (5.0, 1e-3), (0.01, 0.5)]:
        fast = rho.dual_factor(r.clone(), sigma, alpha)
        generic = Rho.dual_factor(rho, r.clone(), sigma, alpha)
        assert torch.allclose(fast[1:], generic[1:], rtol=1e-10, atol=1e-13)
        assert math.isclose(float(fast[0]), 1 - 1 / (1 + 2 * alpha / sigma / 0.05), rel_tol=1e-12)
        assert bool((fast * r <= alpha * (1 + 1e-12)).all())  # the dual stays in the alpha-ball
