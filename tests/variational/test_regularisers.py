"""Regularisers: adjoints, gradients/HVPs vs finite differences, prox optimality conditions."""

import math

import pytest
import torch

from spinv.variational.regularisers import (
    SmoothRegulariser,
    abs2,
    batch_sum,
    h1,
    smoothed_tv,
    wavelet_regulariser,
)
from spinv.variational.rho import HuberRho
from spinv.variational.tgv import TGV, sym_gradient, sym_gradient_adjoint
from spinv.variational.tv import (
    TV,
    DirectionalTV,
    symmetric_gradient_stack,
    symmetric_gradient_stack_adjoint,
)
from spinv.variational.wavelets import WaveletTransform

D = torch.float64


def _rand(shape, seed, complex_=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=D)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=D))
    return x


def _inner(a, b):
    return float(batch_sum((a.conj() * b).real if a.is_complex() else a * b).sum())


SMOOTH = {
    "smoothed_tv": lambda: smoothed_tv(0.3, gamma=0.2),
    "wavelet": lambda: wavelet_regulariser(0.3, gamma=0.2, levels=2),
    "h1": lambda: h1(0.3),
}


@pytest.mark.parametrize("name", list(SMOOTH))
@pytest.mark.parametrize("complex_", [False, True])
def test_gradient_and_hvp_match_central_differences(name, complex_):
    R = SMOOTH[name]()
    u = 0.3 * _rand((2, 1, 16, 16), 0, complex_)
    v = _rand((2, 1, 16, 16), 1, complex_)
    h = 1e-5
    fd = (R.value(u + h * v) - R.value(u - h * v)) / (2 * h)
    exact = batch_sum((R.gradient(u).conj() * v).real)
    assert torch.allclose(fd, exact, rtol=1e-6, atol=1e-8)
    fd_h = (R.gradient(u + h * v) - R.gradient(u - h * v)) / (2 * h)
    hv = R.hvp(u, v)
    assert (fd_h - hv).abs().max() <= 1e-6 * hv.abs().max()
    # Hessian is self-adjoint and positive semidefinite
    w = _rand((2, 1, 16, 16), 2, complex_)
    assert _inner(R.hvp(u, v), w) == pytest.approx(_inner(v, R.hvp(u, w)), rel=1e-10)
    assert _inner(R.hvp(u, v), v) >= 0


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_prox_optimality(name):
    # p = prox_{tau R}(u)  <=>  p - u + tau grad R(p) = 0
    R = SMOOTH[name]()
    u = _rand((2, 1, 16, 16), 3)
    tau = 0.7
    p = R.prox(u, tau)
    res = p - u + tau * R.gradient(p)
    assert res.abs().max() < 1e-8


@pytest.mark.parametrize("complex_", [False, True])
def test_smooth_dual_prox_is_moreau(complex_):
    R = smoothed_tv(0.5, gamma=0.1)
    q = _rand((1, 1, 2, 8, 8), 4, complex_)
    sigma = 0.3
    pq = R.dual_prox(q, sigma)
    # Moreau: prox_{sF*}(q) + s prox_{F/s}(q/s) = q, and prox_{F/s} satisfies its optimality
    z = (q - pq) / sigma
    r = z.abs() if not complex_ else z.abs()
    rr = torch.sqrt(abs2(z).sum(dim=2, keepdim=True))
    opt = z * (1 + (1 / sigma) * R.alpha * R.rho.phi(rr)) - q / sigma
    assert opt.abs().max() < 1e-10
    assert r.shape == z.shape


def test_adjoints_of_operators():
    u = _rand((2, 3, 9, 11), 5)
    z = _rand((2, 3, 4, 2, 9, 11), 6)
    assert _inner(symmetric_gradient_stack(u), z) == pytest.approx(
        _inner(u, symmetric_gradient_stack_adjoint(z)), rel=1e-12
    )
    w = _rand((2, 3, 2, 9, 11), 7)
    e = _rand((2, 3, 3, 9, 11), 8)
    assert _inner(sym_gradient(w), e) == pytest.approx(
        _inner(w, sym_gradient_adjoint(e)), rel=1e-12
    )
    ref = _rand((1, 3, 9, 11), 9)
    dtv = DirectionalTV(1.0, ref, eta=0.1)
    q = _rand((2, 3, 2, 9, 11), 10)
    assert _inner(dtv.op(u), q) == pytest.approx(_inner(u, dtv.op_adjoint(q)), rel=1e-12)


def test_operator_norm_bounds_hold():
    # power iteration on A*A stays below the declared bounds
    for reg, sq in [
        (TV(1.0), 8.0),
        (TV(1.0, "symmetric"), 2.0),
        (DirectionalTV(1.0, _rand((1, 1, 16, 16), 11)), 8.0),
        (wavelet_regulariser(1.0, levels=2), 1.0),
    ]:
        x = _rand((1, 1, 16, 16), 12)
        for _ in range(300):
            x = reg.op_adjoint(reg.op(x))
            lam = float(x.norm())
            x = x / lam
        assert lam <= sq * (1 + 1e-9)
        assert reg.op_norm**2 >= lam * (1 - 1e-12)
    w = _rand((1, 1, 2, 16, 16), 13)
    for _ in range(300):
        w = sym_gradient_adjoint(sym_gradient(w))
        lam = float(w.norm())
        w = w / lam
    assert lam <= 8.0


def _tv_gap(reg, f, tau, p_dual, x):
    # primal-dual gap of min_x 1/2|x-f|^2 + tau R(x) with dual p, |p| <= tau*alpha:
    # P(x) - D(p) = 1/2|x-f|^2 + tau R(x) - (1/2|f|^2 - 1/2|f - A*p|^2)
    primal = 0.5 * batch_sum(abs2(x - f)) + tau * reg.value(x)
    dual = 0.5 * batch_sum(abs2(f)) - 0.5 * batch_sum(abs2(f - reg.op_adjoint(p_dual)))
    return primal - dual


@pytest.mark.parametrize("reg_name", ["tv", "tv-sym", "dtv"])
@pytest.mark.parametrize("complex_", [False, True])
def test_l1_prox_dual_certificate(reg_name, complex_):
    f = _rand((2, 1, 10, 10), 14, complex_)
    reg = {
        "tv": lambda: TV(0.5),
        "tv-sym": lambda: TV(0.5, "symmetric"),
        "dtv": lambda: DirectionalTV(0.5, _rand((1, 1, 10, 10), 15), eta=0.5, gamma=0.9),
    }[reg_name]()
    tau = 0.4
    x, p = reg.prox(f, tau, iterations=1500, tol=1e-12, return_dual=True)
    # dual feasibility and x = f - A* p exactly
    mod = torch.sqrt(abs2(p).sum(dim=reg.group_dim, keepdim=True))
    assert float(mod.max()) <= tau * reg.alpha * (1 + 1e-12)
    assert torch.allclose(x, f - reg.op_adjoint(p))
    gap = _tv_gap(reg, f, tau, p, x)
    assert (gap >= -1e-9).all()
    assert float(gap.max()) < 1e-4 * float(batch_sum(abs2(f)).min())
    # warm start from the dual solution converges immediately to the same point
    x2, _ = reg.prox(f, tau, p0=p, iterations=5, tol=0.0, return_dual=True)
    assert (x2 - x).abs().max() < 1e-4


def test_prox_per_image_tau_tensor():
    f = _rand((2, 1, 12, 12), 16)
    reg = TV(1.0)
    both = reg.prox(f, torch.tensor([0.1, 0.5], dtype=D), iterations=400, tol=1e-12)
    a = reg.prox(f[:1], 0.1, iterations=400, tol=1e-12)
    b = reg.prox(f[1:], 0.5, iterations=400, tol=1e-12)
    assert torch.allclose(both, torch.cat([a, b]), atol=1e-6)


def test_tgv_prox_beats_constant_and_value_bounds():
    f = _rand((1, 1, 8, 8), 17)
    tgv = TGV(0.2)
    p = tgv.prox(f, 1.0, iterations=300, tol=1e-10)
    obj = lambda x: 0.5 * batch_sum(abs2(x - f)) + tgv.value(x, iterations=300)  # noqa: E731
    # better than the trivial candidates f and the mean image
    assert float(obj(p)) < float(obj(f))
    assert float(obj(p)) < float(obj(torch.full_like(f, float(f.mean()))))
    # TGV <= alpha1 * TV (take w = 0)
    assert float(tgv.value(f, iterations=300)) <= float(TV(0.2).value(f)) + 1e-9


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        TV(-1.0)
    with pytest.raises(TypeError, match="alpha"):
        TV("a")
    with pytest.raises(ValueError, match="scheme"):
        TV(1.0, scheme="central")
    with pytest.raises(ValueError, match="operator"):
        SmoothRegulariser(1.0, HuberRho(0.1), operator="laplacian")
    with pytest.raises(ValueError, match="u.shape"):
        TV(1.0).value(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="eta"):
        DirectionalTV(1.0, torch.zeros(1, 1, 4, 4), eta=0.0)
    assert math.isclose(smoothed_tv(2.0, 0.5).smoothness, 2.0 * 2 / 0.5)


def test_thesis_smoothness_bound_eq_1_15():
    # Eq. (1.15): L = 3/2 sqrt(2M) sup|phi'(x)| x + sup phi, with sup|phi'|x = 1/gamma and
    # sup phi = 2/gamma for rho_gamma; M = 2 for the gradient -> 5/gamma,
    # M = 1 for W -> (3/2 sqrt2 + 2)/gamma
    gamma, alpha = 0.05, 0.3
    R = SmoothRegulariser(alpha, HuberRho(gamma), smoothness_bound="thesis")
    assert R.smoothness == pytest.approx(alpha * 5 / gamma)
    Rw = SmoothRegulariser(alpha, HuberRho(gamma), WaveletTransform(2), smoothness_bound="thesis")
    assert Rw.smoothness == pytest.approx(alpha * (1.5 * math.sqrt(2) + 2) / gamma)
    # both dominate the exact Hessian bound measured by power iteration on random points
    u = _rand((1, 1, 12, 12), 20)
    v = _rand((1, 1, 12, 12), 21)
    tight = smoothed_tv(alpha, gamma)
    for _ in range(100):
        v = tight.hvp(u, v)
        lam = float(v.norm())
        v = v / lam
    assert lam <= tight.smoothness * 8 * (1 + 1e-9) <= R.smoothness * 8


def test_one_regulariser_abstraction_for_the_three_families():
    from spinv.bilevel.lower_level import make_regulariser as bilevel_regulariser
    from spinv.generative.regularisers import LinearGaussianGenerator
    from spinv.generative.regularisers import make_regulariser as generative_regulariser
    from spinv.variational.reconstruct import METHODS
    from spinv.variational.reconstruct import make_regulariser as variational_regulariser
    from spinv.variational.regularisers import RegulariserBase

    g = torch.Generator().manual_seed(3)
    u = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    for method in METHODS:
        reg = variational_regulariser(method, 0.1, reference=u if method == "dtv" else None)
        assert isinstance(reg, RegulariserBase) and reg.kind == method
        assert reg(u).shape == (2,)
    # the bilevel J(u) is the unweighted variational R(u): alpha J = smoothed TV with alpha
    for kind, method in (("tv", "tv-smooth"), ("h1", "h1")):
        lower = bilevel_regulariser(kind, gamma=0.05)
        assert isinstance(lower, RegulariserBase) and lower.kind == kind
        ref = variational_regulariser(method, 0.3, gamma=0.05)(u)
        torch.testing.assert_close(0.3 * lower(u), ref, rtol=1e-12, atol=0.0)
    assert torch.equal(bilevel_regulariser("none")(u), torch.zeros(2, dtype=torch.float64))
    # the generative R(u) = inf_z E(u, z): closed form for a linear-Gaussian generator
    gen = LinearGaussianGenerator.random(image_size=8, latent_dim=3, seed=0)
    reg = generative_regulariser("mean", gen)
    assert isinstance(reg, RegulariserBase) and reg.kind == "mean"
    torch.testing.assert_close(reg(u), gen.closed_form_mean_only(u), rtol=1e-8, atol=1e-8)
