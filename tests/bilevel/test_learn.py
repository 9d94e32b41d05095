"""Upper level with L-BFGS-B (Eq. 1.2, Alg. 3), alpha tuning, thresholding, baselines."""

import pytest
import torch

from spinv.bilevel.baselines import (
    gozcu_greedy_lines,
    gozcu_solve_count,
    knoll_density,
    uninformed_patterns,
)
from spinv.bilevel.implicit import SolverOptions, loss_and_gradient, synthetic_image
from spinv.bilevel.learn import (
    BilevelObjective,
    evaluate_pattern,
    learn,
    learn_continuation,
    projected_gradient,
    threshold_and_retune,
    tune_alpha,
)
from spinv.bilevel.lower_level import LowerLevel, make_regulariser
from spinv.bilevel.parametrisations import CartesianLines, FreePattern
from spinv.linalg import inner

OPTS = SolverOptions(tol=1e-9, cg_tol=1e-9)


def _problem(size=16, batch=2, kind="tv"):
    u = synthetic_image(size, 11, batch=batch)
    return LowerLevel.from_images(u, make_regulariser(kind, gamma=0.02), noise=0.03, eps=1e-2)


def test_tune_alpha_reaches_a_stationary_point():
    ll = _problem()
    full = torch.ones(16, 16, dtype=torch.float64)
    res = tune_alpha(ll, full, alpha0=1e-3, maxiter=30, opts=OPTS)
    lg = loss_and_gradient(ll, full, res.alpha, OPTS)
    # first-order optimality in alpha, and better than its neighbours
    assert abs(lg.grad_alpha) * res.alpha < 1e-4 * lg.loss
    for f in (0.5, 2.0):
        assert loss_and_gradient(ll, full, f * res.alpha, OPTS).loss > lg.loss


def test_learning_decreases_the_objective_and_sparsifies():
    ll = _problem()
    par = FreePattern((16, 16), alpha_scale=1e-2)
    res = learn(ll, par, beta=1e-2, alpha0=1e-2, maxiter=15, opts=OPTS)
    objs = [h["objective"] for h in res.history]
    assert objs[-1] < objs[0]
    assert all(b <= a + 1e-12 for a, b in zip(objs, objs[1:], strict=False))
    assert res.sampling_rate < 1.0 and res.effective_solves == 2 * res.evaluations
    # the reported projected gradient is that of the returned point
    _, g = BilevelObjective(ll, par, 1e-2, OPTS)(res.lam)
    assert res.projected_gradient == pytest.approx(
        projected_gradient(res.lam, g, par.bounds()), rel=1e-6)
    assert res.projected_gradient > 0  # 15 iterations: not yet stationary
    assert float(res.pattern.min()) >= 0 and float(res.pattern.max()) <= 1


def test_threshold_and_retune_gives_binary_pattern():
    ll = _problem()
    pat = torch.rand(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pat = torch.where(pat < 0.4, torch.zeros_like(pat), pat)
    res = threshold_and_retune(ll, pat, 1e-2, maxiter=5, opts=OPTS)
    assert set(res.pattern.unique().tolist()) <= {0.0, 1.0}
    assert res.sampling_rate == pytest.approx(float((pat > 0).double().mean()))


def test_retune_after_a_continuous_alpha_of_zero():
    """A continuous pattern may learn alpha = 0; the binary pattern's alpha is re-tuned to a
    stationary point from the scale, not from 1e-8."""
    ll = _problem()
    pat = torch.zeros(16, 16, dtype=torch.float64)
    pat[:, 4:12] = 0.3
    ref = tune_alpha(ll, (pat > 0).double(), alpha0=1e-2, maxiter=30, opts=OPTS)
    res = threshold_and_retune(ll, pat, 0.0, maxiter=15, opts=OPTS, alpha_scale=1e-2)
    assert res.alpha == pytest.approx(ref.alpha, rel=1e-3)
    assert res.loss <= ref.loss * (1 + 1e-9)


def test_lines_learning_runs_and_keeps_lines():
    ll = _problem()
    par = CartesianLines((16, 16), axis=1, alpha_scale=1e-2)
    res = learn(ll, par, beta=1e-2, alpha0=1e-2, maxiter=5, opts=OPTS)
    assert torch.equal(res.pattern, res.pattern[:1].expand(16, 16))


def test_continuation_stages_warm_start_and_sum_the_work():
    ll = _problem()
    par = CartesianLines((16, 16), axis=1, alpha_scale=1e-2)
    lam0 = par.initial(1e-2)
    res = learn_continuation(ll, par, 2e-2, (0.25, 1.0), lam0=lam0, maxiter=3, opts=OPTS)
    betas = [h["beta"] for h in res.history]
    assert betas[0] == pytest.approx(5e-3) and betas[-1] == pytest.approx(2e-2)
    assert betas == sorted(betas) and len(res.history) == res.iterations
    assert res.effective_solves == 2 * res.evaluations
    # the last stage is a plain learn() from the first stage's end point at the final beta
    first = learn(ll, par, 5e-3, lam0=lam0, maxiter=3, opts=OPTS)
    last = learn(ll, par, 2e-2, lam0=first.lam, maxiter=3, opts=OPTS)
    assert res.objective == pytest.approx(last.objective, rel=1e-9)
    assert res.evaluations == first.evaluations + last.evaluations
    with pytest.raises(ValueError, match="fractions"):
        learn_continuation(ll, par, 1e-2, (1.0, 0.5))


def test_evaluate_pattern_metrics():
    ll = _problem(batch=3)
    full = evaluate_pattern(ll, torch.ones(16, 16, dtype=torch.float64), 1e-3)
    low = evaluate_pattern(ll, uninformed_patterns(16, 0.1, kinds=("low_pass",))["low_pass"], 1e-3)
    assert full["n_images"] == 3 and full["psnr"] > low["psnr"] and full["ssim"] > low["ssim"]


def test_baselines_match_the_rate():
    for name, m in uninformed_patterns((32, 32), 0.3, seed=1).items():
        tol = 1 / 64 if name.endswith("lines") else 1 / 2048
        assert abs(float(m.mean()) - 0.3) <= tol, name
    ll = _problem(32)
    k = knoll_density(ll.y, 0.3, seed=0)
    assert int(k.sum()) == round(0.3 * 32 * 32) and float(k[16, 16]) == 1.0


def test_gozcu_greedy_selection_and_count():
    ll = _problem(8, batch=1)
    alpha = 1e-2
    opts = SolverOptions(tol=1e-7, cg_tol=1e-7)
    res = gozcu_greedy_lines(ll, alpha, rate=3 / 8, axis=1, opts=opts)
    assert res.lower_level_solves == gozcu_solve_count(8, 3 / 8) == 8 + 7 + 6
    assert len(res.lines) == 3 and float(res.pattern.mean()) == pytest.approx(3 / 8)
    assert all(b <= a for a, b in zip(res.losses, res.losses[1:], strict=False))
    # the first pick is the best single line (brute force)
    def loss_of(c):
        m = torch.zeros(8, 8, dtype=torch.float64)
        m[:, c] = 1
        u = loss_and_gradient(ll, m, alpha, opts).u - ll.u_true
        return float(0.5 * inner(u, u).sum())

    assert res.lines[0] == min(range(8), key=loss_of)
