"""Second-order total generalised variation (Bredies, Kunisch & Pock 2010).

.. math::
    \\mathrm{TGV}^2_{\\alpha}(u) = \\min_{w}\\; \\alpha_1\\|\\nabla u - w\\|_{2,1}
    + \\alpha_0\\|\\mathcal E w\\|_{2,1},

with :math:`\\nabla` the forward-difference gradient (Neumann) and :math:`\\mathcal E` the
symmetrised gradient :math:`\\tfrac12(\\nabla w + \\nabla w^\\top)` discretised with backward
differences (the adjoint pairing of Bredies et al.), stored as the three components
:math:`(\\partial_y w_1, \\partial_x w_2, \\sqrt2\\cdot\\tfrac12(\\partial_x w_1+\\partial_y w_2))`
so the pointwise Euclidean norm is the Frobenius norm of the symmetric matrix;
:math:`\\|\\mathcal E\\|\\le\\sqrt8`.

Problems with TGV are solved by PDHG on the primal pair :math:`x=(u,w)` with the blocks
:math:`K_1(u,w)=\\nabla u-w` (:math:`F_1=\\alpha_1\\|\\cdot\\|_{2,1}`, :math:`\\|K_1\\|\\le3`) and
:math:`K_2(u,w)=\\mathcal Ew` (:math:`F_2=\\alpha_0\\|\\cdot\\|_{2,1}`), plus any data block
acting on :math:`u` (:class:`OnU`).

>>> import torch
>>> x = torch.arange(8, dtype=torch.float64)
>>> ramp = (x[:, None] + 0 * x[None, :]).reshape(1, 1, 8, 8)
>>> from spinv.variational.tv import TV
>>> float(TV(alpha=1.0).value(ramp))        # 7 unit steps x 8 columns
56.0
>>> tgv = float(TGV(alpha=1.0).value(ramp, iterations=1000))
>>> 7.9 < tgv < 8.2       # affine inside; only the Neumann boundary row costs alpha per column
True
"""

from __future__ import annotations

import math

import torch

from spinv.variational.differences import (
    gradient,
    gradient_adjoint,
    one_sided_difference,
    one_sided_difference_adjoint,
)
from spinv.variational.regularisers import (
    RegulariserBase,
    batch_sum,
    check_alpha,
    check_image,
    modulus,
)
from spinv.variational.solvers.pdhg import DualBlock, LeastSquaresBlock, PDHGOptions, pdhg

_S2 = math.sqrt(2.0)


def sym_gradient(w: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathcal E w`: ``(B, C, 2, H, W) -> (B, C, 3, H, W)`` (backward differences)."""
    w1, w2 = w[..., 0, :, :], w[..., 1, :, :]
    e11 = one_sided_difference(w1, -2, False)
    e22 = one_sided_difference(w2, -1, False)
    e12 = (one_sided_difference(w1, -1, False) + one_sided_difference(w2, -2, False)) / _S2
    return torch.stack([e11, e22, e12], dim=-3)


def sym_gradient_adjoint(e: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`sym_gradient`, ``(B, C, 3, H, W) -> (B, C, 2, H, W)``."""
    e11, e22, e12 = e[..., 0, :, :], e[..., 1, :, :], e[..., 2, :, :] / _S2
    w1 = one_sided_difference_adjoint(e11, -2, False) + one_sided_difference_adjoint(e12, -1, False)
    w2 = one_sided_difference_adjoint(e22, -1, False) + one_sided_difference_adjoint(e12, -2, False)
    return torch.stack([w1, w2], dim=-3)


def _project(q: torch.Tensor, radius: float) -> torch.Tensor:
    return q / torch.clamp(modulus(q, 2) / radius, min=1.0)


class GradMinusW(DualBlock):
    """:math:`K(u,w)=\\nabla u - w`, :math:`F(z)=\\alpha_1\\|z + b\\|_{2,1}` (optional shift ``b``).

    With ``on_u=False`` the primal is :math:`w` alone and :math:`K w = -w`.
    """

    smoothness = None

    def __init__(self, alpha1: float, shift: torch.Tensor | None = None, on_u: bool = True):
        self.alpha1, self.shift, self.on_u = alpha1, shift, on_u
        self.op_norm = 3.0 if on_u else 1.0  # sqrt(8) + 1 <= 3 bound on ||(grad, -I)||

    def op(self, x):
        if self.on_u:
            u, w = x
            return gradient(u) - w
        return -x

    def op_adjoint(self, q):
        if self.on_u:
            return (gradient_adjoint(q), -q)
        return -q

    def dual_prox(self, q, sigma):
        if self.shift is not None:  # F(z) = f(z + b): prox_{sF*}(q) = prox_{sf*}(q + s b)
            q = q + sigma * self.shift
        return _project(q, self.alpha1)

    def value(self, z):
        if self.shift is not None:
            z = z + self.shift
        return self.alpha1 * batch_sum(modulus(z, 2))


class SymGradW(DualBlock):
    """:math:`K(u,w)=\\mathcal Ew`, :math:`F=\\alpha_0\\|\\cdot\\|_{2,1}`."""

    smoothness = None
    op_norm = math.sqrt(8.0)

    def __init__(self, alpha0: float, on_pair: bool = True):
        self.alpha0, self.on_pair = alpha0, on_pair

    def op(self, x):
        return sym_gradient(x[1] if self.on_pair else x)

    def op_adjoint(self, q):
        w = sym_gradient_adjoint(q)
        return (torch.zeros_like(w[..., 0, :, :]), w) if self.on_pair else w

    def dual_prox(self, q, sigma):
        return _project(q, self.alpha0)

    def value(self, z):
        return self.alpha0 * batch_sum(modulus(z, 2))


class OnU(DualBlock):
    """Lift a block acting on :math:`u` to the pair :math:`(u, w)`."""

    def __init__(self, block: DualBlock):
        self.block = block
        self.op_norm, self.smoothness = block.op_norm, block.smoothness

    def op(self, x):
        return self.block.op(x[0])

    def op_adjoint(self, q):
        u = self.block.op_adjoint(q)
        return (u, torch.zeros(u.shape[:2] + (2,) + u.shape[2:], dtype=u.dtype, device=u.device))

    def dual_prox(self, q, sigma):
        return self.block.dual_prox(q, sigma)

    def value(self, z):
        return self.block.value(z)


class TGV(RegulariserBase):
    """:math:`\\mathrm{TGV}^2` with weights ``alpha`` (:math:`\\alpha_1`, first order) and
    ``alpha0`` (:math:`\\alpha_0`, second order; default ``2 * alpha``)."""

    kind = "tgv"
    smoothness = None

    def __init__(self, alpha: float = 1.0, alpha0: float | None = None) -> None:
        self.alpha = check_alpha(alpha)
        self.alpha0 = check_alpha(2.0 * self.alpha if alpha0 is None else alpha0, "alpha0")

    def __repr__(self) -> str:
        return f"TGV(alpha={self.alpha}, alpha0={self.alpha0})"

    def blocks(self) -> list[DualBlock]:
        """The two regularisation blocks on the pair :math:`(u, w)`."""
        return [GradMinusW(self.alpha), SymGradW(self.alpha0)]

    def value(self, u: torch.Tensor, iterations: int = 500, tol: float = 1e-8) -> torch.Tensor:
        """:math:`\\mathrm{TGV}^2(u)` per image, minimising over :math:`w` by PDHG (an upper
        bound that is tight when converged)."""
        check_image(u)
        g = gradient(u)
        blocks = [GradMinusW(self.alpha, shift=g, on_u=False), SymGradW(self.alpha0, False)]
        options = PDHGOptions(iterations=iterations, tol=tol, track_objective=False)
        w, _ = pdhg(blocks, g.clone(), options)
        return blocks[0].value(blocks[0].op(w)) + blocks[1].value(blocks[1].op(w))

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.value(u)

    def solve(self, data_blocks: list[DualBlock], u0: torch.Tensor,
              options: PDHGOptions | None = None, **problem):
        """Minimise :math:`\\sum_j F_j(K_ju) + \\mathrm{TGV}^2(u)` by :func:`~.solvers.pdhg.pdhg`
        on :math:`(u, w)` from :math:`(u_0, \\nabla u_0)`; ``problem``: ``epsilon``, ``g_prox``,
        ``g_value``, ``callback`` of ``pdhg`` (``g_prox`` acts on the pair). Returns
        ``(u, w, history)``."""
        check_image(u0, "u0")
        w0 = gradient(u0)
        blocks = [OnU(b) for b in data_blocks] + self.blocks()
        (u, w), hist = pdhg(blocks, (u0, w0), options, **problem)
        return u, w, hist

    def prox(self, u: torch.Tensor, tau: float, iterations: int = 500, tol: float = 1e-7):
        """:math:`\\operatorname{prox}_{\\tau\\mathrm{TGV}}(u)` by PDHG on :math:`(u, w)`."""
        from spinv.operators.base import Identity

        scaled = TGV(tau * self.alpha, tau * self.alpha0)
        options = PDHGOptions(iterations=iterations, tol=tol, track_objective=False)
        out, _, _ = scaled.solve([LeastSquaresBlock(Identity(), u)], u, options)
        return out
