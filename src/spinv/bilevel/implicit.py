"""Gradients of the upper-level loss by implicit differentiation (thesis Eq. 1.4-1.6, Alg. 3).

With :math:`\\hat u(p)` the lower-level minimiser, the optimality condition
:math:`D_uE(\\hat u;p)=0` and the implicit function theorem give (Eq. 1.5)

.. math::  g=-D_{p,u}E(\\hat u;p)\\,[D_u^2E(\\hat u;p)]^{-1}\\nabla L_{u^*}(\\hat u),

evaluated at an approximate solution :math:`u^k` in practice (Eq. 1.6). For
:math:`L_{u^*}(u)=\\tfrac12\\|u-u^*\\|^2` averaged over the batch,
:func:`loss_and_gradient` solves the lower level (PDHG = Algorithm 1 or Newton-CG =
Algorithm 2, warm-startable), then the adjoint equation :math:`D_u^2E\\,w=\\hat u-u^*` by
preconditioned CG, and applies the mixed derivative of App. 1.D:
:math:`g_{s_i}=-\\tfrac1N\\sum_b 2s_i\\mathrm{Re}(\\overline{(Fw_b)_i}(F\\hat u_b-y_b)_i)` and
:math:`g_\\alpha=-\\tfrac1N\\sum_b\\mathrm{Re}\\langle w_b,A^*(\\phi(|A\\hat u_b|)A\\hat u_b)
\\rangle`.

:func:`check_gradient` compares this with central finite differences of the loss.

>>> err = check_gradient(size=16, seed=0)
>>> err < 1e-5
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinv.bilevel.lower_level import LowerLevel, make_regulariser
from spinv.bilevel.newton_cg import newton_cg
from spinv.bilevel.pdhg import pdhg
from spinv.linalg import conjugate_gradient, inner

__all__ = [
    "SolverOptions",
    "LossGradient",
    "solve_lower",
    "loss_and_gradient",
    "check_gradient",
    "synthetic_image",
    "solve_lower_level",
]


@dataclass
class SolverOptions:
    """Lower-level and adjoint solver settings.

    ``method``: ``"newton"`` (Algorithm 2, preconditioned CG inside) or ``"pdhg"`` (Algorithm
    1); ``tol`` is the relative gradient norm for Newton-CG or the PDHG stopping tolerance;
    ``cg_tol`` the relative residual of the adjoint CG solve.
    """

    method: str = "newton"
    tol: float = 1e-8
    maxit: int | None = None  # None: 100 Newton steps or 5000 PDHG iterations
    cg_tol: float = 1e-8
    cg_maxiter: int = 2000
    precondition: bool = True

    def __post_init__(self):
        if self.method not in ("newton", "pdhg"):
            raise ValueError(f"method={self.method!r}: expected 'newton' or 'pdhg'")
        if self.maxit is None:
            self.maxit = 100 if self.method == "newton" else 5000
        if self.maxit < 1:
            raise ValueError(f"maxit={self.maxit!r}: expected a positive integer")


@dataclass
class LossGradient:
    """Loss :math:`\\tfrac1N\\sum\\tfrac12\\|\\hat u_b-u^*_b\\|^2`, gradients w.r.t. the centred
    pattern ``s`` ``(H, W)`` and ``alpha``, the solution and warm-start states; ``grad_w`` is the
    gradient w.r.t. the data weights :math:`w=s^2` (finite where :math:`s_i=0`)."""

    loss: float
    grad_s: torch.Tensor
    grad_alpha: float
    u: torch.Tensor
    state: object
    adjoint: torch.Tensor
    inner_iterations: int
    cg_iterations: int
    grad_w: torch.Tensor | None = None  # gradient w.r.t. the data weights w = s**2


def solve_lower(
    ll: LowerLevel, s: torch.Tensor, alpha: float, opts: SolverOptions, state=None
) -> tuple[torch.Tensor, object, int]:
    """Solve Eq. (1.3); returns ``(u, state, iterations)`` (state warm-starts the next call)."""
    if ll.reg.is_none:
        u = ll.closed_form_none(s)
        return u, u, 0
    if opts.method == "pdhg":
        res = pdhg(ll, s, alpha, state=state, maxit=opts.maxit, tol=opts.tol)
        return res.u, res.state, res.iterations
    return _newton(ll, s, alpha, opts, state)


def _newton(ll, s, alpha, opts, state):
    u0 = state if torch.is_tensor(state) else None
    res = newton_cg(
        ll, s, alpha, u0=u0, maxit=opts.maxit, gtol=opts.tol, precondition=opts.precondition
    )
    return res.u, res.u, res.cg_iterations


@torch.no_grad()
def loss_and_gradient(
    ll: LowerLevel,
    s: torch.Tensor,
    alpha: float,
    opts: SolverOptions | None = None,
    state=None,
    adjoint0: torch.Tensor | None = None,
) -> LossGradient:
    """Algorithm 3 without the penalty: upper loss and its gradient in ``(s, alpha)``.

    ``state`` and ``adjoint0`` warm-start the lower-level solver and the adjoint CG.
    """
    opts = opts or SolverOptions()
    if ll.u_true is None:
        raise ValueError("ll.u_true is None: the upper level needs ground-truth images")
    n = ll.y.shape[0]
    u, state, lower_iterations = solve_lower(ll, s, alpha, opts, state)
    diff = u - ll.u_true
    loss = float(0.5 * inner(diff, diff).sum() / n)
    if ll.reg.is_none or alpha == 0:
        curv = None
    else:
        curv = ll.curvature(u)
    pre = ll.preconditioner(u, s, alpha, curvature=curv) if opts.precondition else None
    adjoint = conjugate_gradient(
        lambda v: ll.hvp(u, v, s, alpha, curvature=curv),
        diff,
        x0=adjoint0,
        rtol=opts.cg_tol,
        max_iterations=opts.cg_maxiter,
        preconditioner=pre,
    )
    w = adjoint.x
    dw, da = ll.mixed(u, w, s, wrt="w")
    grad_w = -dw.sum(0) / n
    return LossGradient(
        loss=loss,
        grad_s=2 * s.to(grad_w.device, grad_w.dtype) * grad_w,
        grad_alpha=float(-da.sum() / n),
        u=u,
        state=state,
        adjoint=w,
        inner_iterations=lower_iterations,
        cg_iterations=adjoint.iterations,
        grad_w=grad_w,
    )


class _LowerLevelSolve(torch.autograd.Function):
    """:math:`(s,\\alpha)\\mapsto\\hat u` with the backward pass of Eq. (1.5)."""

    @staticmethod
    def forward(ctx, s, alpha, ll, opts):
        u, _, _ = solve_lower(ll, s.detach(), float(alpha), opts)
        ctx.save_for_backward(u, s.detach())
        ctx.ll, ctx.opts, ctx.alpha = ll, opts, float(alpha)
        return u

    @staticmethod
    def backward(ctx, grad_u):
        u, s = ctx.saved_tensors
        ll, opts, alpha = ctx.ll, ctx.opts, ctx.alpha
        with torch.no_grad():
            curv = None if ll.reg.is_none or alpha == 0 else ll.curvature(u)
            pre = ll.preconditioner(u, s, alpha, curvature=curv) if opts.precondition else None
            w = conjugate_gradient(
                lambda v: ll.hvp(u, v, s, alpha, curvature=curv),
                grad_u.to(u.dtype),
                rtol=opts.cg_tol,
                max_iterations=opts.cg_maxiter,
                preconditioner=pre,
            ).x
            ds, da = ll.mixed(u, w, s)
        return -ds.sum(0), -da.sum(), None, None


def solve_lower_level(
    ll: LowerLevel, s: torch.Tensor, alpha, opts: SolverOptions | None = None
) -> torch.Tensor:
    """Differentiable lower-level solution :math:`\\hat u(s,\\alpha)` (Sec. 1.3: "a custom
    PyTorch module with the backpropagation given by solving the adjoint equation").

    ``s`` (``(H, W)``, float64) and ``alpha`` (0-dim float64 tensor) may require grad; any
    real loss of the complex output backpropagates through Eq. (1.5).

    >>> import torch
    >>> from spinv.bilevel.lower_level import make_regulariser
    >>> ll = LowerLevel.from_images(synthetic_image(8), make_regulariser("tv"), noise=0.01)
    >>> s = torch.full((8, 8), 0.5, dtype=torch.float64, requires_grad=True)
    >>> a = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    >>> u = solve_lower_level(ll, s, a)
    >>> (u.abs() ** 2).sum().backward()
    >>> s.grad.shape, a.grad.ndim
    (torch.Size([8, 8]), 0)
    """
    opts = opts or SolverOptions()
    if not torch.is_tensor(alpha):
        alpha = torch.tensor(float(alpha), dtype=torch.float64)
    return _LowerLevelSolve.apply(s, alpha, ll, opts)


def synthetic_image(size: int = 32, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A small piecewise-smooth synthetic image batch ``(batch, 1, size, size)`` in [0, 1]
    (random ellipses on a smooth background), float64, for tests and checks."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, size, dtype=torch.float64),
        torch.linspace(-1, 1, size, dtype=torch.float64),
        indexing="ij",
    )
    out = []
    for _ in range(batch):
        img = 0.2 + 0.1 * xx
        for _ in range(4):
            c = torch.rand(2, generator=gen, dtype=torch.float64) - 0.5
            r = 0.15 + 0.35 * torch.rand(2, generator=gen, dtype=torch.float64)
            v = 0.2 + 0.6 * float(torch.rand(1, generator=gen))
            inside = ((yy - c[0]) / r[0]) ** 2 + ((xx - c[1]) / r[1]) ** 2 <= 1
            img = torch.where(inside, torch.full_like(img, v), img)
        out.append(img.clamp(0, 1))
    return torch.stack(out)[:, None]


def check_gradient(
    size: int = 32,
    seed: int = 0,
    regulariser: str = "tv",
    h: float = 1e-5,
    alpha: float = 2e-3,
) -> float:
    """Relative error of the implicit gradient against central finite differences.

    On a synthetic ``size``-square image with complex noise, a random pattern
    :math:`s\\in[0.2,0.9]^n` and TV (default), the lower level is solved by Newton-CG to a
    relative gradient norm of 1e-13 (float64); the directional derivative of the loss along a
    random pattern direction and along :math:`\\alpha` is compared with
    :math:`(L(p+hd)-L(p-hd))/(2h)`. Returns the larger of the two relative errors.
    """
    gen = torch.Generator().manual_seed(seed)
    u_true = synthetic_image(size, seed)
    reg = make_regulariser(regulariser, gamma=0.01)
    ll = LowerLevel.from_images(u_true, reg, noise=0.01, eps=1e-4, seed=seed)
    s = 0.2 + 0.7 * torch.rand(size, size, generator=gen, dtype=torch.float64)
    d = torch.randn(size, size, generator=gen, dtype=torch.float64)
    opts = SolverOptions(method="newton", tol=1e-13, maxit=200, cg_tol=1e-13)
    lg = loss_and_gradient(ll, s, alpha, opts)

    def loss_at(s_, a_):
        return loss_and_gradient(ll, s_, a_, opts, state=lg.state).loss

    fd_s = (loss_at(s + h * d, alpha) - loss_at(s - h * d, alpha)) / (2 * h)
    an_s = float((lg.grad_s * d).sum())
    errs = [abs(fd_s - an_s) / abs(fd_s)]
    if not ll.reg.is_none:
        ha = h * alpha
        fd_a = (loss_at(s, alpha + ha) - loss_at(s, alpha - ha)) / (2 * ha)
        errs.append(abs(fd_a - lg.grad_alpha) / abs(fd_a))
    return max(errs)
