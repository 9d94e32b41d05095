"""Isotropic total variation and directional TV: :math:`R(u) = \\alpha\\|Au\\|_{2,1}`.

Both are :math:`F_2(Au)` with :math:`F_2(z)=\\alpha\\sum_i|z|_i` (modulus over the spatial
components and real/imaginary parts), whose conjugate is the indicator of
:math:`\\{|q|_i\\le\\alpha\\}`, so :math:`\\operatorname{prox}_{\\sigma F_2^*}` is the pointwise
projection :math:`q_i/\\max(1, |q|_i/\\alpha)` used by PDHG.

:meth:`L1Regulariser.prox` computes :math:`\\operatorname{prox}_{\\tau R}(f) = f - A^*\\hat p`
with the dual problem
:math:`\\hat p\\in\\arg\\min_{|p|_i\\le\\tau\\alpha}\\tfrac12\\|f - A^*p\\|^2` solved by
FISTA on the dual (the fast gradient projection of Beck & Teboulle 2009; step
:math:`1/\\|A\\|^2`), warm-startable from a previous dual ``p0``.

Discretisations of TV (``scheme``):

* ``"forward"``: :math:`A=\\nabla` with forward differences and zero Neumann boundary
  (:math:`\\|\\nabla\\|\\le\\sqrt8`, thesis Appendix 1.C.2). It is exactly invariant under the
  transpose :math:`u\\mapsto u^\\top` (the two components swap) but **not** under 90° rotations
  or flips, which turn forward into backward differences.
* ``"symmetric"``: the average over the four one-sided stencils (forward/backward in each
  direction), :math:`A = \\tfrac14(\\nabla^{s_y s_x}u)_{s_y,s_x\\in\\{f,b\\}}`,
  :math:`R(u)=\\alpha\\sum_{s}\\sum_i|\\nabla^{s}u|_i/4`. The set of stencils is mapped to itself by
  every element of the dihedral group :math:`D_4`, so this TV is exactly invariant under 90°
  rotations and flips and its prox is exactly equivariant (thesis Prop. 2.4.1's setting);
  :math:`\\|A\\|\\le\\sqrt{4\\cdot8}/4=\\sqrt2`.

Directional TV (Ehrhardt & Betcke 2016): :math:`A = D\\nabla` with the pointwise
:math:`D = I-\\xi\\xi^\\top`, :math:`\\xi = \\gamma\\nabla v/\\sqrt{|\\nabla v|^2+\\eta^2}` for a
reference image :math:`v`; :math:`D` is symmetric with eigenvalues in :math:`(0,1]`, so
:math:`A^*=\\nabla^*D` and :math:`\\|A\\|\\le\\sqrt8`.

>>> import torch
>>> u = torch.zeros(1, 1, 6, 6, dtype=torch.float64); u[..., 3:, :] = 1.0
>>> float(TV(alpha=1.0).value(u))          # one unit jump across 6 columns
6.0
>>> float(TV(alpha=1.0, scheme="symmetric").value(u))
6.0
"""

from __future__ import annotations

import math

import torch

from spinv.variational.differences import (
    GRADIENT_NORM_BOUND,
    gradient,
    gradient_adjoint,
    one_sided_difference,
    one_sided_difference_adjoint,
)
from spinv.variational.regularisers import (
    Regulariser,
    abs2,
    batch_sum,
    check_alpha,
    check_image,
    modulus,
)

_STENCILS = ((True, True), (True, False), (False, True), (False, False))


def symmetric_gradient_stack(u: torch.Tensor) -> torch.Tensor:
    """:math:`\\tfrac14(\\nabla^{s}u)_s`: ``(B, C, H, W) -> (B, C, 4, 2, H, W)``."""
    parts = [
        torch.stack([one_sided_difference(u, -2, sy), one_sided_difference(u, -1, sx)], dim=-3)
        for sy, sx in _STENCILS
    ]
    return 0.25 * torch.stack(parts, dim=-4)


def symmetric_gradient_stack_adjoint(z: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`symmetric_gradient_stack`."""
    out = None
    for k, (sy, sx) in enumerate(_STENCILS):
        zk = z[..., k, :, :, :]
        t = one_sided_difference_adjoint(zk[..., 0, :, :], -2, sy) + one_sided_difference_adjoint(
            zk[..., 1, :, :], -1, sx
        )
        out = t if out is None else out + t
    return 0.25 * out


class L1Regulariser(Regulariser):
    """:math:`R(u)=\\alpha\\sum_i|Au|_i`; subclasses set ``op``, ``op_adjoint``, ``op_norm``."""

    smoothness = None

    def dual_value(self, z: torch.Tensor) -> torch.Tensor:
        return self.alpha * batch_sum(modulus(z, self.group_dim))

    def _project(self, q: torch.Tensor, radius) -> torch.Tensor:
        r = modulus(q, self.group_dim)
        if isinstance(radius, torch.Tensor):
            radius = radius.reshape((-1,) + (1,) * (q.dim() - 1))
            return q / torch.clamp(r / radius, min=1.0)
        if radius == 0:
            return torch.zeros_like(q)
        return q / r.mul_(1.0 / radius).clamp_(min=1.0)

    def dual_prox(self, q: torch.Tensor, sigma: float) -> torch.Tensor:
        """Projection onto :math:`\\{|q|_i\\le\\alpha\\}` (independent of ``sigma``)."""
        return self._project(q, self.alpha)

    def prox(
        self,
        u: torch.Tensor,
        tau,
        p0: torch.Tensor | None = None,
        iterations: int = 200,
        tol: float = 1e-7,
        return_dual: bool = False,
        **kwargs,
    ):
        """:math:`\\operatorname{prox}_{\\tau R}(u)` by FISTA on the dual (see module docstring).

        ``tau`` is a float or a ``(B,)`` tensor; ``p0`` warm-starts the dual variable (e.g. the
        dual returned by a previous call with ``return_dual=True``). Stops when the relative
        change of the primal iterate is below ``tol``.
        """
        check_image(u)
        if isinstance(tau, torch.Tensor):
            radius = tau.to(u.real.dtype) * self.alpha
        else:
            if not tau >= 0:
                raise ValueError(f"tau={tau!r}: expected a float >= 0")
            radius = float(tau) * self.alpha
        z0 = self.op(u)
        p = torch.zeros_like(z0) if p0 is None else p0.clone()
        if p.shape != z0.shape:
            raise ValueError(f"p0.shape={tuple(p.shape)}: expected {tuple(z0.shape)}")
        step = 1.0 / self.op_norm**2
        r, t = p, 1.0
        x = u - self.op_adjoint(p)
        tiny = torch.finfo(u.real.dtype).tiny
        for _ in range(iterations):
            p_new = self._project(r + step * self.op(u - self.op_adjoint(r)), radius)
            t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
            r = p_new + ((t - 1) / t_new) * (p_new - p)
            p, t = p_new, t_new
            x_new = u - self.op_adjoint(p)
            change = batch_sum(abs2(x_new - x)).sqrt() / batch_sum(abs2(x)).sqrt().clamp(min=tiny)
            x = x_new
            if bool((change <= tol).all()):
                break
        return (x, p) if return_dual else x


class TV(L1Regulariser):
    """Isotropic total variation :math:`\\alpha\\|\\nabla u\\|_{2,1}` (``scheme`` in module doc)."""

    kind = "tv"

    def __init__(self, alpha: float = 1.0, scheme: str = "forward") -> None:
        self.alpha = check_alpha(alpha)
        if scheme == "forward":
            self.op_norm = GRADIENT_NORM_BOUND
            self.group_dim = 2
        elif scheme == "symmetric":
            self.op_norm = math.sqrt(2.0)
            self.group_dim = 3
        else:
            raise ValueError(f"scheme={scheme!r}: expected 'forward' or 'symmetric'")
        self.scheme = scheme

    def __repr__(self) -> str:
        return f"TV(alpha={self.alpha}, scheme={self.scheme!r})"

    def op(self, u: torch.Tensor) -> torch.Tensor:
        if self.scheme == "forward":
            return gradient(u)
        return symmetric_gradient_stack(u)

    def op_adjoint(self, z: torch.Tensor) -> torch.Tensor:
        if self.scheme == "forward":
            return gradient_adjoint(z)
        return symmetric_gradient_stack_adjoint(z)


class DirectionalTV(L1Regulariser):
    """Directional TV :math:`\\alpha\\|D\\nabla u\\|_{2,1}` of a reference image (module doc).

    ``reference`` is ``(B, C, H, W)`` or ``(1, C, H, W)`` (broadcast), real (a complex reference
    is replaced by its modulus); ``eta > 0`` smooths the normalisation; ``gamma`` in ``(0, 1]``
    scales :math:`\\xi` (``gamma < 1`` keeps :math:`D` positive definite).
    """

    kind = "dtv"
    group_dim = 2
    op_norm = GRADIENT_NORM_BOUND

    def __init__(
        self, alpha: float, reference: torch.Tensor, eta: float = 1e-2, gamma: float = 1.0
    ) -> None:
        self.alpha = check_alpha(alpha)
        check_image(reference, "reference")
        if not eta > 0:
            raise ValueError(f"eta={eta!r}: expected a positive float")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma={gamma!r}: expected a float in (0, 1]")
        ref = reference.abs() if reference.is_complex() else reference
        g = gradient(ref)
        self.xi = gamma * g / (abs2(g).sum(dim=2, keepdim=True) + eta * eta).sqrt()
        self.eta, self.gamma = float(eta), float(gamma)

    def __repr__(self) -> str:
        return f"DirectionalTV(alpha={self.alpha}, eta={self.eta}, gamma={self.gamma})"

    def _apply_d(self, z: torch.Tensor) -> torch.Tensor:
        xi = self.xi.to(device=z.device, dtype=z.real.dtype)
        inner = (xi * z).sum(dim=2, keepdim=True)
        return z - xi * inner

    def op(self, u: torch.Tensor) -> torch.Tensor:
        return self._apply_d(gradient(u))

    def op_adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return gradient_adjoint(self._apply_d(z))
