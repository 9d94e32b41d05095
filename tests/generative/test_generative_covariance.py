"""Structured covariances: positive definiteness, log-dets, solves and samples vs dense
references (torch.linalg), and the band structure of the Cholesky precision factor."""

import math

import pytest
import torch

from spinv.nn.covariance import (
    CholeskyPrecision,
    Diagonal,
    LowRankPlusDiagonal,
    ScaledIdentity,
    causal_offsets,
    shift,
)

H, W = 4, 5
N = H * W


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(kind, B=2, scale=1.0, seed=0, radius=1):
    g = _gen(seed)
    dt = torch.float64
    if kind == "identity":
        return ScaledIdentity(torch.tensor([0.3, -1.2], dtype=dt)[:B], (B, 1, H, W))
    if kind == "diagonal":
        return Diagonal(scale * torch.randn(B, 1, H, W, generator=g, dtype=dt))
    if kind == "lowrank":
        return LowRankPlusDiagonal(
            0.5 * torch.randn(B, 1, H, W, generator=g, dtype=dt),
            scale * torch.randn(B, 3, H, W, generator=g, dtype=dt),
        )
    K = len(causal_offsets(radius))
    return CholeskyPrecision(
        0.3 * torch.randn(B, 1, H, W, generator=g, dtype=dt),
        scale * torch.randn(B, K, H, W, generator=g, dtype=dt),
        radius=radius,
    )


KINDS = ["identity", "diagonal", "lowrank", "precision"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [0.3, 5.0])
def test_positive_definite_and_symmetric(kind, scale):
    S = make(kind, scale=scale).dense()
    assert torch.allclose(S, S.transpose(1, 2), atol=1e-8 * float(S.abs().max()))
    evals = torch.linalg.eigvalsh(S)
    assert bool((evals > 0).all()), evals.min()


@pytest.mark.parametrize("kind", KINDS)
def test_logdet_matches_slogdet(kind):
    cov = make(kind)
    sign, ref = torch.linalg.slogdet(cov.dense())
    assert bool((sign > 0).all())
    assert torch.allclose(cov.logdet(), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_precision_and_mahalanobis_match_dense_solve(kind):
    cov = make(kind)
    S = cov.dense()
    r = torch.randn(2, 1, H, W, generator=_gen(5), dtype=torch.float64)
    ref = torch.linalg.solve(S, r.reshape(2, N, 1)).reshape(2, 1, H, W)
    assert torch.allclose(cov.apply_precision(r), ref, atol=1e-9)
    maha = (r.reshape(2, N) * ref.reshape(2, N)).sum(1)
    assert torch.allclose(cov.mahalanobis(r), maha, rtol=1e-9)
    # Sigma applied to Sigma^{-1} r gives r back
    assert torch.allclose(cov.apply(cov.apply_precision(r)), r, atol=1e-9)
    assert torch.allclose(cov.dense_precision(), torch.linalg.inv(S), atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_nll_matches_torch_distribution(kind):
    cov = make(kind)
    S = cov.dense()
    r = torch.randn(2, 1, H, W, generator=_gen(7), dtype=torch.float64)
    dist = torch.distributions.MultivariateNormal(torch.zeros(2, N, dtype=torch.float64), S)
    assert torch.allclose(cov.nll(r), -dist.log_prob(r.reshape(2, N)), rtol=1e-9)


def test_cholesky_factor_is_banded_lower_triangular():
    radius = 2
    cov = make("precision", B=1, radius=radius, seed=3)
    L = cov.dense_factor()[0]
    assert torch.equal(L, torch.tril(L))
    assert bool((L.diagonal() > 0).all())
    for i in range(N):
        for j in range(N):
            if i != j and L[i, j] != 0:
                di, dj = divmod(i, W), divmod(j, W)
                assert abs(di[0] - dj[0]) <= radius and abs(di[1] - dj[1]) <= radius
    # the precision L L^T is sparse: no entry beyond twice the window radius
    P = cov.dense_precision()[0]
    far = [(i, j) for i in range(N) for j in range(N)
           if abs(i // W - j // W) > 2 * radius or abs(i % W - j % W) > 2 * radius]
    assert all(P[i, j] == 0 for i, j in far)
    assert math.isclose(float(cov.logdet()[0]), -2 * float(torch.log(L.diagonal()).sum()),
                        rel_tol=1e-12)


def test_shift_and_offsets():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    s = shift(x, 1, -1)
    assert s[0, 0, 0, 1] == x[0, 0, 1, 0] and s[0, 0, 0, 0] == 0 and s[0, 0, 2, 2] == 0
    offs = causal_offsets(2)
    assert len(offs) == 12 and all(dr > 0 or (dr == 0 and dc > 0) for dr, dc in offs)


@pytest.mark.parametrize("kind", ["lowrank", "precision"])
def test_samples_have_the_right_covariance(kind):
    cov = make(kind, B=1, seed=11, scale=0.5)
    n = 40000
    g = _gen(0)
    mean = torch.zeros(1, 1, H, W, dtype=torch.float64)
    eps = torch.randn((n,) + tuple(cov.noise_shape()[1:]), generator=g, dtype=torch.float64)
    x = cov.sample_noise(eps) if kind == "lowrank" else None
    if kind == "precision":  # noise map is batch-1: apply per column via the dense factor
        L = cov.dense_factor()[0]
        x = torch.linalg.solve_triangular(L.T, eps.reshape(n, N).T, upper=True).T
    emp = x.reshape(n, N).T.cov()
    S = cov.dense()[0]
    assert float((emp - S).abs().max()) < 0.05 * float(S.diagonal().max())
    one = cov.sample(mean, _gen(1))
    assert one.shape == (1, 1, H, W)


def test_bad_inputs():
    with pytest.raises(ValueError, match="log_var"):
        Diagonal(torch.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match="offdiag"):
        CholeskyPrecision(torch.zeros(1, 1, 3, 3), torch.zeros(1, 3, 3, 3), radius=1)
    with pytest.raises(ValueError, match="radius"):
        causal_offsets(-1)
    with pytest.raises(TypeError, match="log_gamma"):
        ScaledIdentity(1.0, (1, 1, 2, 2))
    with pytest.raises(ValueError, match="factors"):
        LowRankPlusDiagonal(torch.zeros(1, 1, 3, 3), torch.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match="image size"):
        Diagonal(torch.zeros(1, 1, 3, 3)).mahalanobis(torch.zeros(1, 1, 4, 4))
