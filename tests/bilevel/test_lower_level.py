"""Derivatives of the lower-level energy (Eq. 1.3, App. 1.B/1.D) against finite differences."""

import pytest
import torch

from spinv.bilevel.lower_level import make_regulariser
from spinv.linalg import inner

KINDS = ["tv", "wavelet", "h1", "dtv", "none"]


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_energy_finite_differences(make_problem, kind, rp, ri):
    ll = make_problem(kind)
    s, alpha = rp(16), 0.03
    u, d = ri((2, 1, 16, 16), 1), ri((2, 1, 16, 16), 2)
    h = 1e-6
    fd = (ll.energy(u + h * d, s, alpha) - ll.energy(u - h * d, s, alpha)) / (2 * h)
    an = inner(ll.gradient(u, s, alpha), d)
    torch.testing.assert_close(fd, an, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_hessian_vector_product_matches_gradient_differences(make_problem, kind, rp, ri):
    ll = make_problem(kind)
    s, alpha = rp(16), 0.03
    # scale u so that |Au| straddles gamma (both branches of rho are exercised)
    u, w = 0.05 * ri((2, 1, 16, 16), 3), ri((2, 1, 16, 16), 4)
    h = 1e-7
    fd = (ll.gradient(u + h * w, s, alpha) - ll.gradient(u - h * w, s, alpha)) / (2 * h)
    hv = ll.hvp(u, w, s, alpha)
    assert float((fd - hv).abs().max() / hv.abs().max()) < 1e-6
    # symmetry of the Hessian in the real inner product
    v = ri((2, 1, 16, 16), 5)
    torch.testing.assert_close(inner(ll.hvp(u, w, s, alpha), v), inner(w, ll.hvp(u, v, s, alpha)))


@pytest.mark.parametrize("kind", ["tv", "wavelet", "h1"])
def test_mixed_derivative_matches_finite_differences(make_problem, kind, rp, ri):
    ll = make_problem(kind)
    s, alpha = rp(16), 0.03
    u, w = ri((2, 1, 16, 16), 6), ri((2, 1, 16, 16), 7)
    ds, da = ll.mixed(u, w, s)
    d = torch.randn(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    h = 1e-6
    fd = inner(ll.gradient(u, s + h * d, alpha) - ll.gradient(u, s - h * d, alpha), w) / (2 * h)
    torch.testing.assert_close(fd, (ds * d).sum(dim=(1, 2)), rtol=1e-6, atol=1e-8)
    fda = inner(ll.gradient(u, s, alpha + h) - ll.gradient(u, s, alpha - h), w) / (2 * h)
    torch.testing.assert_close(fda, da, rtol=1e-6, atol=1e-8)


def test_regulariser_validation():
    with pytest.raises(ValueError, match="kind='tvv'"):
        make_regulariser("tvv")
    with pytest.raises(ValueError, match="reference"):
        make_regulariser("dtv")


def test_pattern_shape_is_checked(make_problem, ri):
    ll = make_problem("tv")
    with pytest.raises(ValueError, match="s.shape"):
        ll.gradient(ri((2, 1, 16, 16)), torch.ones(8, 8), 0.1)


def test_closed_form_without_regulariser_is_stationary(make_problem, rp):
    ll = make_problem("none")
    s = rp(16)
    u = ll.closed_form_none(s)
    assert float(ll.gradient(u, s, 0.0).abs().max()) < 1e-12
