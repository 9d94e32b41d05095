"""spinv.linalg: batched inner products, the one CG and the one power iteration, pinned to the
private copies they replaced (reproduced here verbatim from the code before the refactor)."""

from __future__ import annotations

import pytest
import torch

from spinv.linalg import (
    batch_view,
    conjugate_gradient,
    inner,
    norm,
    power_iteration,
    random_vector,
    squared_norm,
    total_norm,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _spd_batch(n=12, b=3, seed=0, dtype=torch.float64):
    """A batch of SPD matrices (one per item) acting on complex or real (B, 1, 1, n) vectors."""
    g = _gen(seed)
    q = torch.randn(b, n, n, generator=g, dtype=dtype)
    mats = q @ q.transpose(1, 2) + 0.1 * torch.eye(n, dtype=dtype)

    def apply(v):
        return (mats.to(v.dtype) @ v.reshape(b, n, 1)).reshape(v.shape)

    return mats, apply


def _complex(shape, seed, dtype=torch.complex128):
    return random_vector(shape, dtype, generator=_gen(seed))


# --------------------------------------------------------------------- inner products, norms


def test_inner_is_the_real_part_of_the_hermitian_product():
    a, b = _complex((3, 1, 4, 5), 1), _complex((3, 1, 4, 5), 2)
    ref = (a * b.conj()).real.reshape(3, -1).sum(1)
    torch.testing.assert_close(inner(a, b), ref)
    torch.testing.assert_close(inner(a, 1j * a), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(squared_norm(a), inner(a, a))
    torch.testing.assert_close(norm(a), a.reshape(3, -1).abs().pow(2).sum(1).sqrt())
    assert total_norm(a) == pytest.approx(float(norm(a).pow(2).sum().sqrt()), rel=1e-12)
    x = torch.randn(2, 3, 4, generator=_gen(3))
    assert torch.equal(inner(x, x), (x * x).reshape(2, -1).sum(1))
    assert batch_view(torch.ones(2), x).shape == (2, 1, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64,
                                   torch.complex128])
def test_operators_inner_agrees_with_linalg_inner(dtype):
    # spinv.operators.base.inner (used by adjoint_test) is kept: bit-identical on real tensors,
    # equal to rounding on complex ones (complex product, then the real part)
    from spinv.operators.base import inner as operator_inner

    g = _gen(11)
    a = torch.randn(3, 1, 16, 16, generator=g, dtype=dtype)
    b = torch.randn(3, 1, 16, 16, generator=g, dtype=dtype)
    if dtype.is_complex:
        torch.testing.assert_close(operator_inner(a, b), inner(a, b))
        torch.testing.assert_close(operator_inner(a, b.real), inner(a, b.real))
    else:
        assert torch.equal(operator_inner(a, b), inner(a, b))


# ----------------------------------------------------------------------- conjugate gradients


@pytest.mark.parametrize("precondition", [False, True])
def test_cg_solves_each_system_of_the_batch(precondition):
    mats, apply = _spd_batch()
    b = _complex((3, 1, 1, 12), 4)
    diag = torch.diagonal(mats, dim1=1, dim2=2).reshape(3, 1, 1, 12)
    pre = (lambda r: r / diag) if precondition else None
    res = conjugate_gradient(apply, b, rtol=1e-12, max_iterations=200, preconditioner=pre)
    ref = torch.linalg.solve(mats.to(b.dtype), b.reshape(3, 12, 1)).reshape(b.shape)
    assert res.converged and res.relative_residual <= 1e-12
    torch.testing.assert_close(res.x, ref, rtol=1e-9, atol=1e-9)


def test_cg_batch_item_is_the_single_system_iterate():
    # every item follows its own recursion: item i of a batched solve equals the solve of system
    # i alone with the same number of updates
    mats, apply = _spd_batch()
    b = torch.randn(3, 1, 1, 12, generator=_gen(5), dtype=torch.float64)
    batched = conjugate_gradient(apply, b, rtol=0.0, max_iterations=5)
    for i in range(3):
        single = conjugate_gradient(lambda v, i=i: (mats[i] @ v.reshape(12, 1)).reshape(v.shape),
                                    b[i:i + 1], rtol=0.0, max_iterations=5)
        torch.testing.assert_close(batched.x[i:i + 1], single.x, rtol=1e-12, atol=1e-12)
    assert batched.iterations == 5 and not batched.converged


def test_cg_tolerances_zero_rhs_and_validation():
    _, apply = _spd_batch()
    b = torch.randn(3, 1, 1, 12, generator=_gen(6), dtype=torch.float64)
    b[1] = 0.0
    res = conjugate_gradient(apply, b, atol=torch.tensor([1e-3, 0.0, 1e-3]), max_iterations=100)
    assert torch.isfinite(res.x).all() and torch.equal(res.x[1], torch.zeros_like(b[1]))
    assert bool((res.residual_norm <= 1e-3).all())
    # zero updates when the start already satisfies the tolerance
    assert conjugate_gradient(apply, b, rtol=1e9).iterations == 0
    with pytest.raises(ValueError, match="rtol"):
        conjugate_gradient(apply, b, rtol=-1.0)
    with pytest.raises(ValueError, match="max_iterations"):
        conjugate_gradient(apply, b, max_iterations=1.5)
    with pytest.raises(TypeError, match="b:"):
        conjugate_gradient(apply, b.numpy())


def _old_bilevel_cg(apply, b, x0=None, precond=None, tol=1e-10, maxiter=1000):
    """spinv.bilevel.newton_cg.conjugate_gradient before spinv.linalg (relative tolerance)."""
    def rdot(a, c):
        return (a.real * c.real + a.imag * c.imag).reshape(a.shape[0], -1).sum(1)

    def bshape(v, like):
        return v.reshape((-1,) + (1,) * (like.ndim - 1))

    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    bnorm = rdot(b, b).sqrt().clamp_min(1e-300)
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = rdot(r, z)
    rel = float((rdot(r, r).sqrt() / bnorm).max())
    it = 0
    while rel > tol and it < maxiter:
        it += 1
        hp = apply(p)
        php = rdot(p, hp)
        a = torch.where(php > 0, rz / php.clamp_min(1e-300), torch.zeros_like(php))
        x = x + bshape(a, x) * p
        r = r - bshape(a, x) * hp
        rel = float((rdot(r, r).sqrt() / bnorm).max())
        if rel <= tol:
            break
        z = precond(r) if precond is not None else r
        rz_new = rdot(r, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + bshape(beta, p) * p
        rz = rz_new
    return x, it


def _old_generative_cg(apply_A, b, x0, iterations=50, tol=1e-6, precond=None):
    """spinv.generative.reconstruct.conjugate_gradient before spinv.linalg (real images)."""
    def bdot(a, c):
        return (a * c).reshape(a.shape[0], -1).sum(dim=1)

    def bview(v, like):
        return v.reshape((-1,) + (1,) * (like.dim() - 1))

    x = x0.clone()
    r = b - apply_A(x)
    s = precond(r) if precond is not None else r
    p = s.clone()
    rs = bdot(r, s)
    bnorm = bdot(b, b).sqrt().clamp_min(1e-30)
    for _ in range(iterations):
        if bool((bdot(r, r).sqrt() / bnorm <= tol).all()):
            break
        Ap = apply_A(p)
        alpha = rs / bdot(p, Ap).clamp_min(1e-30)
        x = x + bview(alpha, x) * p
        r = r - bview(alpha, r) * Ap
        s = precond(r) if precond is not None else r
        rs_new = bdot(r, s)
        p = s + bview(rs_new / rs.clamp_min(1e-30), p) * p
        rs = rs_new
    return x


def _old_variational_cg(hvp, b, iterations=100, tol=1e-8):
    """spinv.variational.solvers.newton_cg.conjugate_gradient before spinv.linalg: absolute
    per-image tolerance, converged images frozen."""
    def bsum(x):
        return x.square().reshape(x.shape[0], -1).sum(1)

    def bview(v, like):
        return v.reshape((-1,) + (1,) * (like.dim() - 1))

    x, r = torch.zeros_like(b), b.clone()
    p, rs = r.clone(), bsum(r)
    tol2 = torch.as_tensor(tol, dtype=rs.dtype) ** 2
    tiny = torch.finfo(rs.dtype).tiny
    for _ in range(iterations):
        if bool((rs <= tol2).all()):
            break
        hp = hvp(p)
        php = (p * hp).reshape(p.shape[0], -1).sum(1)
        active = (rs > tol2) & (php > 0)
        a = torch.where(active, rs / php.clamp(min=tiny), 0.0)
        x, r = x + bview(a, x) * p, r - bview(a, r) * hp
        rs_new = bsum(r)
        p = r + bview(torch.where(active, rs_new / rs.clamp(min=tiny), 0.0), p) * p
        rs = torch.where(active, rs_new, rs)
    return x


@pytest.mark.parametrize("precondition", [False, True])
@pytest.mark.parametrize("warm", [False, True])
def test_cg_is_bit_identical_to_the_former_bilevel_cg(precondition, warm):
    mats, apply = _spd_batch(seed=7)
    b = _complex((3, 1, 1, 12), 8)
    x0 = _complex((3, 1, 1, 12), 9) if warm else None
    diag = torch.diagonal(mats, dim1=1, dim2=2).reshape(3, 1, 1, 12)
    pre = (lambda r: r / diag) if precondition else None
    for tol in (1e-3, 1e-10):
        old, it = _old_bilevel_cg(apply, b, x0, pre, tol=tol)
        new = conjugate_gradient(apply, b, x0, rtol=tol, max_iterations=1000,
                                 preconditioner=pre)
        assert torch.equal(new.x, old) and new.iterations == it


@pytest.mark.parametrize("precondition", [False, True])
def test_cg_is_bit_identical_to_the_former_generative_cg(precondition):
    mats, apply = _spd_batch(seed=10, dtype=torch.float32)
    b = torch.randn(3, 1, 1, 12, generator=_gen(11))
    x0 = torch.randn(3, 1, 1, 12, generator=_gen(12))
    diag = torch.diagonal(mats, dim1=1, dim2=2).reshape(3, 1, 1, 12)
    pre = (lambda r: r / diag) if precondition else None
    for iterations in (3, 30):
        old = _old_generative_cg(apply, b, x0, iterations=iterations, tol=1e-5, precond=pre)
        new = conjugate_gradient(apply, b, x0, rtol=1e-5, max_iterations=iterations,
                                 preconditioner=pre).x
        assert torch.equal(new, old)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cg_is_bit_identical_to_the_former_variational_cg(dtype):
    # absolute per-image tolerances, an image frozen once it meets its own
    mats, apply = _spd_batch(seed=13, dtype=dtype)
    b = torch.randn(3, 1, 1, 12, generator=_gen(14), dtype=dtype)
    b[0] *= 1e-3  # this image converges first
    tol = torch.tensor([1e-6, 1e-4, 1e-8], dtype=dtype)
    if dtype == torch.float32:
        tol = tol.clamp_min(1e-4)
    old = _old_variational_cg(apply, b, tol=tol)
    new = conjugate_gradient(apply, b, rtol=0.0, atol=tol, max_iterations=100,
                             freeze_converged=True)
    assert torch.equal(new.x, old)
    # frozen: each image is the solve of its system alone, whatever the batch (float64: the
    # float32 rounding of batched and single products may move a stopping time)
    for i in range(3 if dtype == torch.float64 else 0):
        single = conjugate_gradient(lambda v, i=i: (mats[i] @ v.reshape(12, 1)).reshape(v.shape),
                                    b[i:i + 1], rtol=0.0, atol=tol[i:i + 1],
                                    max_iterations=100, freeze_converged=True)
        torch.testing.assert_close(new.x[i:i + 1], single.x, rtol=1e-6, atol=1e-6)
    assert bool((norm(apply(new.x) - b) <= tol * (1 + 1e-3)).all())


# ------------------------------------------------------------------------- power iteration


def _old_operator_norm(normal, x, iterations=100, tol=1e-7):
    """LinearOperator.norm before spinv.linalg (x: the random start)."""
    x = x / x.abs().pow(2).sum().sqrt()
    value = 0.0
    for _ in range(iterations):
        z = normal(x)
        new = float(z.abs().pow(2).sum().sqrt())
        if new == 0.0:
            return 0.0
        x = z / new
        if abs(new - value) <= tol * new:
            value = new
            break
        value = new
    return value**0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64, torch.float64])
def test_power_iteration_is_bit_identical_to_the_former_operator_norm(dtype):
    g = _gen(15)
    m = torch.randn(20, 16, generator=g, dtype=torch.float64).to(dtype)

    def normal(v):
        return ((v.reshape(v.shape[0], -1) @ m.T) @ m.conj()).reshape(v.shape)

    x = random_vector((2, 1, 4, 4), dtype, generator=_gen(16))
    for iterations, tol in ((100, 1e-7), (5, 0.0), (300, 1e-12)):
        old = _old_operator_norm(normal, x, iterations, tol)
        assert power_iteration(normal, x, iterations=iterations, tol=tol).value == old
    exact = float(torch.linalg.matrix_norm(m.to(torch.complex128), ord=2))
    assert _old_operator_norm(normal, x, 300, 1e-12) == pytest.approx(exact, rel=1e-4)


def test_power_iteration_forms_agree_and_bound_from_below():
    g = _gen(17)
    m = torch.randn(9, 7, generator=g, dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(m, ord=2))
    v0 = torch.randn(1, 7, generator=g, dtype=torch.float64)
    pair = power_iteration(lambda v: v @ m.T, v0, adjoint=lambda w: w @ m, iterations=300)
    normal = power_iteration(lambda v: v @ m.T @ m, v0, iterations=300)
    assert pair.value == pytest.approx(exact, rel=1e-10)
    assert normal.value == pytest.approx(exact, rel=1e-10)
    assert all(h <= exact * (1 + 1e-12) for h in pair.history)
    assert abs(float(total_norm(pair.vector)) - 1.0) < 1e-12
    # per item: the largest singular value of each block
    blocks = torch.stack([m, 2 * m])
    res = power_iteration(lambda v: (blocks @ v.unsqueeze(-1)).squeeze(-1),
                          torch.randn(2, 7, generator=g, dtype=torch.float64),
                          adjoint=lambda w: (blocks.transpose(1, 2) @ w.unsqueeze(-1)).squeeze(-1),
                          iterations=300, per_item=True)
    torch.testing.assert_close(res.value, torch.tensor([exact, 2 * exact], dtype=torch.float64))
    # the zero map, the tolerance stop and bad input
    assert power_iteration(lambda v: 0 * v, v0).value == 0.0
    assert power_iteration(lambda v: v @ m.T @ m, v0, iterations=300, tol=1e-3).iterations < 300
    with pytest.raises(ValueError, match="iterations"):
        power_iteration(lambda v: v, v0, iterations=0)
