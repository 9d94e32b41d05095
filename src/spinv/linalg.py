"""The numerical core: batched inner products and norms, one conjugate-gradient solver and one
power iteration, shared by every solver of the package (a leaf: imports only torch).

**Batches.** A tensor of shape ``(B, ...)`` is a batch of ``B`` independent vectors (images
``(B, C, H, W)``, complex for MRI). Complex vectors are elements of the *real* Hilbert space
:math:`\\mathbb C^n\\cong\\mathbb R^{2n}` (thesis App. 1.B): the inner product is
:math:`\\langle a,b\\rangle=\\mathrm{Re}\\sum_i a_i\\bar b_i`, for which the Hessians of App. 1.D
are self-adjoint.

- :func:`inner` -- :math:`\\mathrm{Re}\\langle a_b, b_b\\rangle` per batch item, shape ``(B,)``;
- :func:`squared_norm`, :func:`norm` -- :math:`\\|x_b\\|^2`, :math:`\\|x_b\\|` per batch item
  (equal to ``inner(x, x)`` and its root up to the order of summation: ``squared_norm`` sums the
  real view in one reduction, the fastest form on CPU);
- :func:`total_norm` -- :math:`\\|x\\|` of the whole batch as one vector (a Python float);
- :func:`batch_view` -- a ``(B,)`` tensor shaped to broadcast against a batch.

**Conjugate gradients** (:func:`conjugate_gradient`) for :math:`Hx=b` with :math:`H`
self-adjoint positive (semi)definite for the real inner product, one system per batch item,
optionally preconditioned by an SPD :math:`M\\approx H` (``preconditioner`` applies
:math:`M^{-1}`). *Tolerance convention*: batch item :math:`b` has converged once

.. math:: \\|r_b\\| \\le \\mathrm{rtol}\\,\\|b_b\\| \\quad\\text{or}\\quad
          \\|r_b\\| \\le \\mathrm{atol}_b,\\qquad r = b - Hx

(Euclidean norm of the recursively updated residual, not the preconditioned one), and the
solver stops when every item has converged or after ``max_iterations`` updates. Every item
follows its own CG recursion (its own step lengths). By default all items are updated until the
last one converges, so item :math:`b` of a batched solve is the CG iterate of system :math:`b`
alone after the same number of updates; with ``freeze_converged=True`` an item stops being
updated once it has converged, so it is the iterate of system :math:`b` alone at its own
stopping time (independent of the rest of the batch). To solve the whole batch as *one* system
(shared step lengths), pass it with a leading axis of length 1.

**Power iteration** (:func:`power_iteration`) for the largest singular value
:math:`\\sigma_{\\max}` of a linear map :math:`A`, given either the normal operator
:math:`N=A^*A` (``adjoint=None``: :math:`v\\leftarrow Nv/\\|Nv\\|`, estimate
:math:`\\sqrt{\\|Nv\\|}` for unit :math:`v`) or :math:`A` and :math:`A^*` (estimate
:math:`\\|Av\\|`, then :math:`v\\leftarrow A^*Av/\\|A^*Av\\|`). Both estimates are attained
values, hence *lower* bounds of :math:`\\sigma_{\\max}` that converge from below; seeded starts
come from :func:`random_vector`. With ``per_item=True`` each batch item is its own vector (e.g.
the block-diagonal Jacobian of a batched network).

>>> import torch
>>> H = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
>>> b = torch.ones(2, 3, dtype=torch.float64)
>>> res = conjugate_gradient(lambda v: v @ H, b, rtol=1e-12)
>>> res.x[0].tolist(), res.iterations
([1.0, 0.5, 0.25], 3)
>>> round(power_iteration(lambda v: v @ (H @ H), torch.ones(1, 3, dtype=torch.float64),
...                       iterations=200, tol=1e-14).value, 6)
4.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Tensor = torch.Tensor
LinearMap = Callable[[Tensor], Tensor]

__all__ = [
    "inner",
    "squared_norm",
    "norm",
    "total_norm",
    "batch_view",
    "random_vector",
    "CGResult",
    "conjugate_gradient",
    "PowerIterationResult",
    "power_iteration",
]


def inner(a: Tensor, b: Tensor) -> Tensor:
    """:math:`\\mathrm{Re}\\sum_i a_i\\bar b_i` over all axes but the first, shape ``(B,)``.

    >>> a = torch.tensor([[1 + 2j, 3j]])
    >>> inner(a, a).tolist(), inner(a, 1j * a).tolist(), inner(a, torch.ones(1, 2)).tolist()
    ([14.0], [0.0], [1.0])
    """
    if a.is_complex() and b.is_complex():
        prod = a.real * b.real + a.imag * b.imag
    elif a.is_complex() or b.is_complex():  # the real one has imaginary part 0
        prod = a.real * b.real
    else:
        prod = a * b
    return prod.reshape(a.shape[0], -1).sum(dim=1)


def squared_norm(x: Tensor) -> Tensor:
    """:math:`\\|x_b\\|^2` per batch item, shape ``(B,)`` (complex: of the real view).

    >>> squared_norm(torch.tensor([[3.0, 4.0], [1.0, 0.0]])).tolist()
    [25.0, 1.0]
    """
    if x.is_complex():
        x = torch.view_as_real(x)
    flat = x.reshape(x.shape[0], -1)
    return (flat * flat).sum(dim=1)


def norm(x: Tensor) -> Tensor:
    """:math:`\\|x_b\\|` per batch item, shape ``(B,)``."""
    return squared_norm(x).sqrt()


def total_norm(x: Tensor) -> float:
    """:math:`(\\sum_i|x_i|^2)^{1/2}` over the whole tensor, all batch items together.

    >>> total_norm(torch.tensor([[3.0], [4.0]]))
    5.0
    """
    return float(x.abs().pow(2).sum().sqrt())


def batch_view(values: Tensor, like: Tensor) -> Tensor:
    """``values`` of shape ``(B,)`` reshaped to ``(B, 1, ..., 1)`` to broadcast against ``like``."""
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def random_vector(shape: tuple[int, ...], dtype: torch.dtype, device=None,
                  generator: torch.Generator | None = None) -> Tensor:
    """Standard normal tensor drawn on the CPU (reproducible across devices), then moved.

    Complex dtypes draw the real part, then the imaginary part, from the same generator.
    """
    if dtype.is_complex:
        real = torch.float32 if dtype == torch.complex64 else torch.float64
        re = torch.randn(shape, generator=generator, dtype=real, device="cpu")
        im = torch.randn(shape, generator=generator, dtype=real, device="cpu")
        return torch.complex(re, im).to(device)
    return torch.randn(shape, generator=generator, dtype=dtype, device="cpu").to(device)


@dataclass(frozen=True)
class CGResult:
    """Output of :func:`conjugate_gradient`.

    ``x`` the solution estimate; ``iterations`` the number of CG updates; ``residual_norm`` and
    ``rhs_norm`` the per-item :math:`\\|r\\|` and :math:`\\|b\\|` (``(B,)``); ``converged``
    whether every item met the tolerance.
    """

    x: Tensor
    iterations: int
    residual_norm: Tensor
    rhs_norm: Tensor
    converged: bool

    @property
    def relative_residual(self) -> float:
        """:math:`\\max_b \\|r_b\\|/\\|b_b\\|` (0 for a zero right-hand side solved exactly)."""
        tiny = torch.finfo(self.rhs_norm.dtype).tiny
        return float((self.residual_norm / self.rhs_norm.clamp_min(tiny)).max())


def _check_tolerances(rtol: float, atol, max_iterations: int) -> None:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not rtol >= 0:
        raise ValueError(f"rtol={rtol!r}: expected a number >= 0")
    if not isinstance(atol, Tensor) and (isinstance(atol, bool) or not isinstance(
            atol, (int, float)) or not atol >= 0):
        raise ValueError(f"atol={atol!r}: expected a number >= 0 or a (B,) tensor")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or (
            max_iterations < 0):
        raise ValueError(f"max_iterations={max_iterations!r}: expected an integer >= 0")


def conjugate_gradient(
    apply: LinearMap,
    b: Tensor,
    x0: Tensor | None = None,
    *,
    rtol: float = 1e-6,
    atol: float | Tensor = 0.0,
    max_iterations: int = 100,
    preconditioner: LinearMap | None = None,
    freeze_converged: bool = False,
) -> CGResult:
    """Batched (preconditioned) CG for :math:`Hx=b`, ``H = apply`` (module docstring).

    ``x0`` defaults to 0 (then :math:`H` is not applied to it). ``atol`` is a number or a
    ``(B,)`` tensor. Step lengths are guarded: an item whose curvature
    :math:`\\langle p,Hp\\rangle` or :math:`\\langle r,M^{-1}r\\rangle` is not positive gets a zero
    step (a zero residual, or :math:`H` only semidefinite), never a NaN.

    >>> b = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    >>> res = conjugate_gradient(lambda v: 2 * v, b, atol=1e-6)
    >>> res.x.tolist(), res.iterations, res.converged
    ([[0.5, 0.5], [1.0, 0.0]], 1, True)
    """
    if not isinstance(b, Tensor):
        raise TypeError(f"b: expected a torch.Tensor, got {type(b).__name__}")
    _check_tolerances(rtol, atol, max_iterations)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    real = b.real.dtype
    tiny = torch.finfo(real).tiny
    b_norm = inner(b, b).sqrt()
    b_safe = b_norm.clamp_min(tiny)
    atol_t = torch.as_tensor(atol, dtype=real, device=b.device)

    def met(r_norm: Tensor) -> Tensor:
        return (r_norm / b_safe <= rtol) | (r_norm <= atol_t)

    z = preconditioner(r) if preconditioner is not None else r
    p = z.clone()
    rz = inner(r, z)
    r_norm = inner(r, r).sqrt()
    item_met = met(r_norm)
    converged = bool(item_met.all())
    iterations = 0
    while not converged and iterations < max_iterations:
        iterations += 1
        hp = apply(p)
        php = inner(p, hp)
        move = php > 0
        if freeze_converged:
            move = move & ~item_met
        step = torch.where(move, rz / php.clamp_min(tiny), torch.zeros_like(php))
        x = x + batch_view(step, x) * p
        r = r - batch_view(step, x) * hp
        r_norm = inner(r, r).sqrt()
        item_met = met(r_norm)
        converged = bool(item_met.all())
        if converged:
            break
        z = preconditioner(r) if preconditioner is not None else r
        rz_new = inner(r, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(tiny), torch.zeros_like(rz))
        if freeze_converged:
            beta = torch.where(move, beta, torch.zeros_like(beta))
            rz_new = torch.where(move, rz_new, rz)
        p = z + batch_view(beta, p) * p
        rz = rz_new
    return CGResult(x=x, iterations=iterations, residual_norm=r_norm, rhs_norm=b_norm,
                    converged=converged)


@dataclass(frozen=True)
class PowerIterationResult:
    """Output of :func:`power_iteration`.

    ``value``: the estimate of :math:`\\sigma_{\\max}` at the last iterate (a float; with
    ``per_item`` a ``(B,)`` tensor); ``vector``: the last unit vector(s), to warm-start a later
    call; ``history``: the estimate after every iteration (with ``per_item``: its maximum over
    the batch); ``iterations``: the number of applications of the map.
    """

    value: float | Tensor
    vector: Tensor
    iterations: int
    history: list[float] = field(default_factory=list)


def _magnitude(x: Tensor, per_item: bool) -> Tensor:
    """:math:`(\\sum_i|x_i|^2)^{1/2}` over the whole tensor, or per batch item."""
    sq = x.abs().pow(2)
    return sq.reshape(x.shape[0], -1).sum(dim=1).sqrt() if per_item else sq.sum().sqrt()


def _unit(x: Tensor, magnitude: Tensor, per_item: bool) -> Tensor:
    if per_item:
        return x / batch_view(magnitude.clamp_min(1e-30), x)
    return x / max(float(magnitude), 1e-30)


@torch.no_grad()
def power_iteration(
    apply: LinearMap,
    v0: Tensor,
    adjoint: LinearMap | None = None,
    *,
    iterations: int = 100,
    tol: float | None = None,
    per_item: bool = False,
) -> PowerIterationResult:
    """Largest singular value of a linear map by power iteration from ``v0`` (module docstring).

    ``apply`` is :math:`N=A^*A` when ``adjoint`` is None, else :math:`A` (with ``adjoint``
    :math:`A^*`). Stops after ``iterations`` steps, when the map returns 0 (estimate 0), or --
    with ``tol`` -- once consecutive estimates :math:`\\lambda` (of :math:`\\|A\\|^2` for a
    normal operator, of :math:`\\|A\\|` otherwise) satisfy
    :math:`|\\lambda_k-\\lambda_{k-1}|\\le\\mathrm{tol}\\,\\lambda_k`. Runs without autograd.

    >>> A = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> res = power_iteration(lambda v: v @ A.T, torch.ones(1, 2, dtype=torch.float64),
    ...                       adjoint=lambda w: w @ A, iterations=60)
    >>> round(res.value, 8), [round(t, 6) for t in res.vector.flatten().tolist()]
    (3.0, [1.0, 0.0])
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected an integer >= 1")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol={tol!r}: expected a number >= 0 or None")
    v = _unit(v0, _magnitude(v0, per_item), per_item)
    history: list[float] = []
    value, previous = None, 0.0
    for k in range(1, iterations + 1):
        w = apply(v)
        size = _magnitude(w, per_item)
        top = float(size.max())
        if adjoint is None:  # ||N v|| estimates sigma^2
            value = size.sqrt() if per_item else top**0.5
            if top == 0.0:
                history.append(0.0)
                return PowerIterationResult(value, v, k, history)
            v = _unit(w, size, per_item)
        else:  # ||A v|| estimates sigma
            value = size if per_item else top
            if top == 0.0:
                history.append(0.0)
                return PowerIterationResult(value, v, k, history)
            back = adjoint(w)
            v = _unit(back, _magnitude(back, per_item), per_item)
        history.append(float(value.max()) if per_item else value)
        if tol is not None and abs(top - previous) <= tol * top:
            break
        previous = top
    return PowerIterationResult(value, v, k, history)
