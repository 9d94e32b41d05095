"""Pointwise penalties :math:`\\rho` of the regulariser :math:`Q(v)=\\sum_i\\rho(|v|_i)`.

Thesis §1.2.1 (Eq. 1.3) uses the twice continuously differentiable Huber-type function

.. math::
    \\rho_\\gamma(x) = \\begin{cases} -\\dfrac{|x|^3}{3\\gamma^2} + \\dfrac{x^2}{\\gamma}
    & |x|\\le\\gamma \\\\ |x| - \\dfrac{\\gamma}{3} & |x| > \\gamma. \\end{cases}

For :math:`x \\ge 0` its derivatives and the auxiliary functions of Appendix 1.B are

* :math:`\\rho'(x) = 2x/\\gamma - x^2/\\gamma^2` on :math:`[0,\\gamma]`, 1 beyond;
* :math:`\\rho''(x) = 2/\\gamma - 2x/\\gamma^2` on :math:`[0,\\gamma]`, 0 beyond;
* :math:`\\phi(x) = \\rho'(x)/x = 2/\\gamma - x/\\gamma^2` on :math:`[0,\\gamma]`, :math:`1/x`
  beyond (:math:`\\phi(0) = 2/\\gamma`), used in Eq. (1.8): :math:`D_zQ(z)=\\phi(|z|)z`;
* :math:`\\psi(x) = \\phi'(x)/x` (:math:`-1/(\\gamma^2 x)` on :math:`(0,\\gamma]`,
  :math:`-1/x^3` beyond, :math:`\\psi(0)=0`), used in the Hessian action Eq. (1.10).

The prox of :math:`x\\mapsto t\\rho(|x|)` (Appendix 1.C.1) is :math:`C(|x|, t)\\,x/|x|` where
:math:`C` solves :math:`(1 + t\\phi(C))C = |x|`; for :math:`\\rho_\\gamma` this is a quadratic
on :math:`[0,\\gamma]` and :math:`C = |x| - t` beyond.

:class:`QuadraticRho` is :math:`\\rho(x) = x^2/2` (H1 regularisation with :math:`A=\\nabla`).

All functions are vectorised with ``torch.where``/``clamp`` only (no boolean-mask indexing) and
act elementwise on nonnegative magnitudes.

>>> import torch
>>> rho = HuberRho(gamma=0.1)
>>> x = torch.tensor([0.0, 0.05, 0.1, 1.0], dtype=torch.float64)
>>> rho.value(x)
tensor([0.0000, 0.0208, 0.0667, 0.9667], dtype=torch.float64)
>>> [round(v, 6) for v in rho.phi(x).tolist()]
[20.0, 15.0, 10.0, 1.0]
"""

from __future__ import annotations

import math

import torch


class Rho:
    """Interface of a convex, increasing, :math:`C^2` penalty with :math:`\\rho'(x)=O(x)`."""

    def value(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def second_derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def phi(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """:math:`\\phi(x) = \\rho'(x)/x` (continuously extended to 0)."""
        raise NotImplementedError

    def psi(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """:math:`\\psi(x) = \\phi'(x)/x`, :math:`\\psi(0)=0` (Appendix 1.B)."""
        raise NotImplementedError

    def prox_magnitude(self, r: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Solve :math:`(1 + t\\phi(C))C = r` for :math:`C\\ge0` (Appendix 1.C.1)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def dual_factor(self, r: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
        """Factor :math:`f` with :math:`\\operatorname{prox}_{\\sigma F^*}(q) = f(|q|)\\,q` for
        :math:`F(z)=\\alpha\\sum_i\\rho(|z|_i)`: by Moreau,
        :math:`f(r) = 1 - C(r/\\sigma, \\alpha/\\sigma)/(r/\\sigma)`. ``r`` may be modified."""
        rs = r / sigma
        c = self.prox_magnitude(rs, alpha / sigma)
        return torch.rsub(c.div_(rs.clamp_(min=torch.finfo(r.dtype).tiny)), 1.0)

    def sup_phi(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def sup_phi_prime_x(self) -> float:  # pragma: no cover - abstract
        """:math:`\\sup_{x\\ge0}|\\phi'(x)|x`."""
        raise NotImplementedError

    def sup_second_derivative(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def smoothness(self, components: int = 1, bound: str = "tight") -> float:
        """Lipschitz constant of :math:`\\nabla Q` for :math:`z` with ``components`` real parts.

        ``bound="thesis"`` is Eq. (1.15):
        :math:`\\tfrac32\\sqrt{2M}\\sup|\\phi'(x)|x + \\sup\\phi` with ``M = components / 2``
        complex components. ``bound="tight"`` uses that :math:`D_z^2Q(z)` has eigenvalues
        :math:`\\rho''(|z|)` (along :math:`z`) and :math:`\\phi(|z|)` (orthogonal to it), so
        :math:`\\|D^2Q\\| \\le \\max(\\sup\\rho'', \\sup\\phi)`.
        """
        if bound == "tight":
            return max(self.sup_second_derivative(), self.sup_phi())
        if bound == "thesis":
            m = max(components / 2.0, 0.5)
            return 1.5 * math.sqrt(2.0 * m) * self.sup_phi_prime_x() + self.sup_phi()
        raise ValueError(f"bound={bound!r}: expected 'tight' or 'thesis'")


class HuberRho(Rho):
    """The :math:`C^2` Huber-type :math:`\\rho_\\gamma` of thesis §1.2.1 (see module docstring)."""

    def __init__(self, gamma: float = 1e-2) -> None:
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not gamma > 0:
            raise ValueError(f"gamma={gamma!r}: expected a positive float")
        self.gamma = float(gamma)

    def __repr__(self) -> str:
        return f"HuberRho(gamma={self.gamma})"

    def value(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        a = x.abs()
        s = a.clamp(max=g)
        # inner polynomial at min(|x|, g) plus the linear continuation (|x| - g)
        return -(s**3) / (3 * g * g) + s * s / g + (a - s)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        s = x.abs().clamp(max=g)
        return torch.sign(x) * (2 * s / g - s * s / (g * g))

    def second_derivative(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        s = x.abs().clamp(max=g)
        return 2 / g - 2 * s / (g * g)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        a = x.abs()
        inner = 2 / g - a / (g * g)
        return torch.where(a <= g, inner, 1.0 / a.clamp(min=g))

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        a = x.abs()
        tiny = torch.finfo(a.dtype).tiny
        inner = -1.0 / (g * g * a.clamp(min=tiny))
        outer = -1.0 / a.clamp(min=g) ** 3
        return torch.where(a == 0, torch.zeros_like(a), torch.where(a <= g, inner, outer))

    def prox_magnitude(self, r: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        # On [0, g]: (t/g^2) C^2 - (1 + 2t/g) C + r = 0, smaller root written stably as
        # C = 2r / (b + sqrt(b^2 - 4 t r / g^2)), b = 1 + 2t/g; valid iff r <= g + t.
        g = self.gamma
        b = 1 + 2 * t / g
        disc = (b * b - (4 * t / (g * g)) * r).clamp_(min=0.0).sqrt_()
        inner = (2 * r).div_(disc.add_(b))
        return torch.where(r <= g + t, inner, r - t)

    def dual_factor(self, r: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
        """Closed form of :meth:`Rho.dual_factor` (eight kernels; used by PDHG every iteration).

        With :math:`t=\\alpha/\\sigma`, :math:`b = 1+2t/\\gamma` and
        :math:`R=\\sigma\\gamma+\\alpha`: for :math:`r\\le R`,
        :math:`f = 1 - 2/(b+\\sqrt{b^2-4tr/(\\sigma\\gamma^2)})` (limit :math:`1-1/b` at 0);
        beyond, :math:`C = r/\\sigma - t` gives :math:`f=\\alpha/r` (projection onto the
        :math:`\\alpha`-ball, as for TV). Since :math:`|\\operatorname{prox}_{\\sigma F^*}(q)|
        \\le\\alpha` (:math:`F` is :math:`\\alpha`-Lipschitz, :math:`\\rho'\\le1`), the inner
        branch is :math:`\\le\\alpha/r` and equals it at :math:`R`, so
        :math:`f(r)=\\min(f_{\\mathrm{inner}}(\\min(r,R)),\\ \\alpha/r)` without a branch
        mask (:math:`\\alpha/0=\\infty` is never selected).
        """
        g = self.gamma
        t = alpha / sigma
        b = 1.0 + 2.0 * t / g
        inner = torch.clamp(r, max=sigma * g + alpha)
        inner = torch.rsub(inner, b * b, alpha=4.0 * t / (sigma * g * g)).sqrt_().add_(b)
        inner = torch.div(-2.0, inner).add_(1.0)
        return torch.minimum(inner, torch.div(alpha, r), out=inner)

    def sup_phi(self) -> float:
        return 2.0 / self.gamma

    def sup_phi_prime_x(self) -> float:
        return 1.0 / self.gamma

    def sup_second_derivative(self) -> float:
        return 2.0 / self.gamma


class QuadraticRho(Rho):
    """:math:`\\rho(x) = x^2/2`: with :math:`A=\\nabla` this is H1 (Tikhonov on the gradient)."""

    def __repr__(self) -> str:
        return "QuadraticRho()"

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * x

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def second_derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def prox_magnitude(self, r: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return r / (1 + t)

    def sup_phi(self) -> float:
        return 1.0

    def sup_phi_prime_x(self) -> float:
        return 0.0

    def sup_second_derivative(self) -> float:
        return 1.0


def rho_gamma(x: torch.Tensor, gamma: float = 1e-2) -> torch.Tensor:
    """Functional shortcut for :meth:`HuberRho.value`."""
    return HuberRho(gamma).value(x)
