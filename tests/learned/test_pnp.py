"""Plug-and-Play (Algorithm 6, PnP-ADMM): convergence with averaged denoisers, plots."""

from __future__ import annotations

import pytest
import torch

from spinv.learned.pnp import (
    RelaxedDenoiser,
    compare_fixed_point_residuals,
    operator_norm,
    plot_fixed_point_residuals,
    pnp_admm,
    pnp_proximal_gradient,
)
from spinv.linalg import conjugate_gradient
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser
from spinv.operators import Identity, LinearOperator


class DenseOperator(LinearOperator):
    """A small dense matrix acting on flattened (B, C, H, W) images (test operator)."""

    def __init__(self, matrix: torch.Tensor, shape: tuple[int, int, int]):
        super().__init__()
        self.register_buffer("m", matrix)
        self.shape = shape

    def forward(self, x):
        return (x.reshape(x.shape[0], -1) @ self.m.T)[:, None, None, :]

    def adjoint(self, y):
        return (y.reshape(y.shape[0], -1) @ self.m).reshape(y.shape[0], *self.shape)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _averaged(seed=0, gamma=1.99):
    den = NonexpansiveDenoiser.from_config(1, width=4, depth=2, tied=True, alpha=0.5, gamma=gamma,
                                           residual=True, seed=seed).eval()
    assert den.certified_averagedness() == pytest.approx(gamma / 2)
    return den


def _problem():
    g = _gen(0)
    x = torch.rand(1, 1, 8, 8, generator=g)
    m = torch.randn(40, 64, generator=g) / 8.0  # underdetermined: nontrivial null space
    op = DenseOperator(m, (1, 8, 8))
    return op, op(x) + 0.01 * torch.randn(1, 1, 1, 40, generator=g)


def _monotone_until_floor(res, floor=1e-5):
    pairs = [(a, b) for a, b in zip(res, res[1:], strict=False) if a > floor]
    return all(b <= a * (1 + 1e-4) for a, b in pairs)


def test_pnp_pgd_with_averaged_denoiser_converges():
    op, y = _problem()
    assert op.adjoint_test((1, 1, 8, 8)) < 1e-5
    res = pnp_proximal_gradient(op, y, _averaged(), iterations=150)
    assert res.relative_residuals[-1] < 1e-4 * res.relative_residuals[0]
    assert _monotone_until_floor(res.relative_residuals)
    assert torch.isfinite(res.x).all()


def test_pnp_admm_with_firmly_nonexpansive_denoiser_converges():
    op, y = _problem()
    res = pnp_admm(op, y, _averaged(gamma=1.0), rho=1.0, iterations=80)
    assert res.relative_residuals[-1] < 1e-3 * res.relative_residuals[0]


def test_pnp_on_ct_pgd_and_admm():
    from spinv.operators import ParallelBeamCT

    op = ParallelBeamCT(24, n_angles=12)
    x = torch.rand(1, 1, 24, 24, generator=_gen(4))
    y = op(x)
    res = pnp_proximal_gradient(op, y, _averaged(), iterations=60)
    assert res.relative_residuals[-1] < 1e-4 * res.relative_residuals[0]
    res = pnp_admm(op, y, _averaged(gamma=1.0), rho=1.0, iterations=40)
    assert res.relative_residuals[-1] < 1e-4 * res.relative_residuals[0]


def test_unconstrained_denoiser_has_no_such_guarantee():
    # same problem, a random unconstrained DnCNN: residual does not go to zero
    op, y = _problem()
    res = pnp_proximal_gradient(op, y, DnCNN(1, width=8, depth=4, zero_last=False,
                                                      seed=0).eval(),
                                iterations=40)
    last = res.relative_residuals[-1]
    assert not last < 1e-3 * res.relative_residuals[0] or not torch.isfinite(res.x).all()


def test_pnp_on_complex_mri_split_mode():
    from spinv.operators import SubsampledFourier

    g = _gen(1)
    mask = (torch.rand(16, 16, generator=g) < 0.4).float()
    op = SubsampledFourier(mask)
    y = op(torch.rand(1, 1, 16, 16, generator=g))
    res = pnp_proximal_gradient(op, y, _averaged(), step=1.0, iterations=80)
    assert res.x.is_complex() and res.x.shape == (1, 1, 16, 16)
    assert res.relative_residuals[-1] < 1e-4 * res.relative_residuals[0]


def test_pnp_identity_denoiser_solves_least_squares():
    # with Phi = id, PGD is gradient descent on E_y: converges to a least-squares solution
    g = _gen(2)
    m = torch.randn(80, 64, generator=g, dtype=torch.float64) / 8.0  # injective
    op = DenseOperator(m, (1, 8, 8))
    x = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)
    res = pnp_proximal_gradient(op, op(x), lambda u: u, iterations=3000, tol=1e-12)
    assert torch.allclose(res.x, x, atol=1e-6)
    res = pnp_admm(op, op(x), lambda u: u, rho=0.05, iterations=300, tol=1e-12)
    assert torch.allclose(res.x, x, atol=1e-6)


def _whole_batch_cg(apply, b, x0, iterations, tol=1e-8):
    """The CG that PnP-ADMM used before spinv.linalg: the batch as one system (Python floats)."""
    inner = lambda a, c: (a * c).reshape(a.shape[0], -1).sum(1)  # noqa: E731 (real only)
    x = x0.clone()
    r = b - apply(x)
    p = r.clone()
    rs = float(inner(r, r).sum())
    b_norm = float(inner(b, b).sum()) ** 0.5 or 1.0
    for _ in range(iterations):
        if rs ** 0.5 <= tol * b_norm:
            break
        ap = apply(p)
        alpha = rs / float(inner(p, ap).sum())
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = float(inner(r, r).sum())
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


@pytest.mark.parametrize("iterations", [3, 50])
def test_admm_x_step_is_the_former_whole_batch_cg(iterations):
    # the x-step of PnP-ADMM solves the batch as one system (shared step lengths): a leading
    # axis of length 1 makes spinv.linalg.conjugate_gradient do exactly that
    g = _gen(3)
    q = torch.randn(10, 10, generator=g, dtype=torch.float64)
    mat = q @ q.T + torch.eye(10, dtype=torch.float64)
    b = torch.randn(3, 10, generator=g, dtype=torch.float64)
    x0 = torch.randn(3, 10, generator=g, dtype=torch.float64)
    old = _whole_batch_cg(lambda v: v @ mat.T, b, x0, iterations)
    new = conjugate_gradient(lambda v: v[0] @ mat.T, b[None], x0[None], rtol=1e-8,
                             max_iterations=iterations).x[0]
    assert (new - old).abs().max() < 1e-10
    if iterations == 50:
        assert torch.allclose(new @ mat.T, b, atol=1e-6)


def test_operator_norm_is_the_operator_power_iteration():
    g = _gen(4)
    op = DenseOperator(torch.randn(20, 16, generator=g), (1, 4, 4))
    like = torch.zeros(2, 1, 4, 4)
    exact = float(torch.linalg.matrix_norm(op.m, ord=2))
    est = operator_norm(op, like, iterations=500, tol=1e-12)
    assert est <= exact * (1 + 1e-6) and est == pytest.approx(exact, rel=1e-4)
    # same start, same iteration as LinearOperator.norm for inputs of the operator's dtype
    assert operator_norm(op, like, tol=1e-7) == op.norm((2, 1, 4, 4))


def test_pgd_with_metrics_runs_algorithm_6():
    from spinv.experiments.nonexpansive.pnp_convergence import pnp_pgd_with_metrics

    g = _gen(5)
    m = torch.randn(40, 64, generator=g) / 8.0
    op = DenseOperator(m, (1, 8, 8))
    truth = torch.rand(1, 1, 8, 8, generator=g)
    y = op(truth)
    den = _averaged()
    ref = pnp_proximal_gradient(op, y, den, step=0.5, iterations=6, tol=None)
    out = pnp_pgd_with_metrics(op, y, den, truth, step=0.5, iterations=6)
    assert out["residuals"] == ref.residuals and torch.equal(out["x"], ref.x)
    # the objective is that of the new iterate u_k: Algorithm 6 records E_y(u_{k-1})
    assert out["objective"][:-1] == ref.objective[1:]


def test_plot_is_written_atomically(tmp_path):
    op, y = Identity(), torch.rand(1, 1, 8, 8, generator=_gen())
    out = tmp_path / "sub" / "residuals.png"
    results = compare_fixed_point_residuals(op, y, {"averaged": _averaged()}, path=out,
                                            iterations=5, step=0.5)
    assert out.is_file() and out.stat().st_size > 1000
    assert [p.name for p in out.parent.iterdir()] == ["residuals.png"]
    assert len(results["averaged"].residuals) == 5
    with pytest.raises(ValueError, match="histories"):
        plot_fixed_point_residuals({}, tmp_path / "x.png")


def test_bad_arguments():
    with pytest.raises(ValueError, match="iterations"):
        pnp_proximal_gradient(Identity(), torch.zeros(1, 1, 4, 4), lambda u: u, iterations=0)
    with pytest.raises(ValueError, match="rho"):
        pnp_admm(Identity(), torch.zeros(1, 1, 4, 4), lambda u: u, rho=0.0)
    with pytest.raises(TypeError, match="operator"):
        pnp_admm(object(), torch.zeros(1, 1, 4, 4), lambda u: u)


@pytest.mark.parametrize("weight", [0.1, 0.5, 1.0])
def test_relaxed_averaged_denoiser_is_weight_alpha_averaged(weight):
    """(1 - w) id + w Phi of a certified alpha-averaged Phi: certificate w alpha, and on random
    pairs ||Tx - Ty||^2 <= ||x - y||^2 - (1 - a)/a ||(I - T)x - (I - T)y||^2 with a = w alpha
    (the defining inequality of a-averagedness)."""
    den = _averaged(gamma=1.99, seed=3)
    relaxed = RelaxedDenoiser(den, weight)
    a = relaxed.certified_averagedness()
    assert a == pytest.approx(weight * 0.995)
    assert relaxed.certified_lipschitz() <= 1.0 + 1e-12
    g = _gen(5)
    x, y = torch.randn(2, 16, 1, 12, 12, generator=g).unbind(0)
    y = x + 0.1 * y  # nearby pairs too
    with torch.no_grad():
        tx, ty = relaxed(x), relaxed(y)
    lhs = ((tx - ty) ** 2).flatten(1).sum(1)
    rhs = (((x - y) ** 2).flatten(1).sum(1)
           - (1 - a) / a * (((x - tx) - (y - ty)) ** 2).flatten(1).sum(1))
    assert bool((lhs <= rhs + 1e-5).all()), (lhs - rhs).max()


def test_relaxed_denoiser_rejects_bad_weights_and_reports_no_certificate_for_dncnn():
    with pytest.raises(ValueError, match="weight"):
        RelaxedDenoiser(lambda u: u, 0.0)
    with pytest.raises(ValueError, match="weight"):
        RelaxedDenoiser(lambda u: u, 1.5)
    net = DnCNN(1, width=4, depth=3, zero_last=False, seed=0).eval()
    relaxed = RelaxedDenoiser(net, 0.5)
    assert relaxed.certified_averagedness() is None
    assert relaxed.certified_lipschitz() == pytest.approx(0.5 + 0.5 * net.lipschitz_upper_bound())


def test_pnp_callback_sees_every_iterate():
    op, y = _problem()
    seen = []
    res = pnp_proximal_gradient(op, y, _averaged(), iterations=7,
                                callback=lambda k, u: seen.append((k, u.clone())))
    assert [k for k, _ in seen] == list(range(1, 8))
    assert torch.equal(seen[-1][1], res.x)
    seen.clear()
    res = pnp_admm(op, y, _averaged(gamma=1.0), rho=1.0, iterations=4,
                   callback=lambda k, u: seen.append((k, u.clone())))
    assert [k for k, _ in seen] == [1, 2, 3, 4] and torch.equal(seen[-1][1], res.x)
