"""Parametrisations :math:`\\lambda\\mapsto p(\\lambda)=(S,\\alpha)` and the sparsity penalty.

Thesis Sec. 1.2.2 and Appendix 1.A. A parametrisation maps a real vector :math:`\\lambda` in a
box :math:`B` to a centred pattern :math:`s\\in[0,1]^{H\\times W}` and :math:`\\alpha\\ge0`;
the upper-level gradient follows by the chain rule
:math:`\\nabla_\\lambda=D_\\lambda p(\\lambda)^*\\nabla_p` (App. 1.A), implemented by
:meth:`Parametrisation.vjp`.

* :class:`FreePattern`: :math:`s_i=\\lambda_i`, :math:`\\alpha=c\\lambda_{n+1}` (Sec. 1.2.2);
* :class:`CartesianLines`: one weight per phase-encoding line (App. 1.A, first bullet);
* :class:`FixedPattern`: a given pattern, learn :math:`\\alpha` only (App. 1.A, second bullet);
* :class:`DifferentiablePattern`: any differentiable torch map :math:`\\lambda\\mapsto s`,
  with the chain rule done by autograd.

:math:`\\alpha` is stored as :math:`\\alpha=c\\,\\lambda_\\alpha` with a scale ``alpha_scale``
:math:`c` so that all coordinates have comparable size for L-BFGS-B (a change of variables,
not of the problem). With ``alpha=`` given, :math:`\\alpha` is fixed and not learned (e.g. the
``"none"`` regulariser, :math:`\\alpha=0`).

The penalty of Sec. 1.2.2 is :math:`P(p)=\\beta\\sum_i(p_i+p_i(1-p_i))`, which favours sparse
and binary patterns; :func:`sparsity_penalty` returns its value and gradient
:math:`\\beta(2-2p_i)`.

>>> import torch
>>> par = CartesianLines((4, 3), axis=0, alpha_scale=1e-3)
>>> lam = torch.tensor([1.0, 0.0, 0.5, 0.25, 2.0], dtype=torch.float64)
>>> s, alpha = par(lam)
>>> s[:, 0].tolist(), alpha
([1.0, 0.0, 0.5, 0.25], 0.002)
>>> par.vjp(lam, torch.ones(4, 3, dtype=torch.float64), 1.0).tolist()
[3.0, 3.0, 3.0, 3.0, 0.001]
>>> sparsity_penalty(torch.tensor([0.0, 0.5, 1.0]), beta=1.0)[0].item()
1.75
"""

from __future__ import annotations

import torch

__all__ = [
    "Parametrisation",
    "FreePattern",
    "CartesianLines",
    "FixedPattern",
    "DifferentiablePattern",
    "sparsity_penalty",
    "sampling_rate",
]


def sparsity_penalty(p: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`P(p)=\\beta\\sum_i(p_i+p_i(1-p_i))` and its gradient :math:`\\beta(2-2p)`."""
    if beta < 0:
        raise ValueError(f"beta={beta!r}: expected a nonnegative float")
    return beta * (2 * p - p * p).sum(), beta * (2 - 2 * p)


def sampling_rate(s: torch.Tensor, threshold: float = 0.0) -> float:
    """Fraction of k-space with weight ``> threshold`` (the thesis thresholds at 0)."""
    return float((s > threshold).to(torch.float64).mean())


class Parametrisation:
    """Base class. Subclasses define ``n_pattern`` and :meth:`pattern` / :meth:`pattern_vjp`."""

    n_pattern: int = 0

    #: ``"amplitude"``: the parametrisation outputs :math:`s` (the thesis' :math:`S=\\mathrm{diag}
    #: (s)`); ``"power"``: it outputs the data weights :math:`w=s^2` and :math:`s=\\sqrt w`.
    weights: str = "amplitude"

    def __init__(
        self, shape: tuple[int, int], alpha_scale: float = 1e-3, alpha: float | None = None
    ):
        if len(shape) != 2 or min(shape) < 2:
            raise ValueError(f"shape={shape!r}: expected (H, W) with H, W >= 2")
        if not alpha_scale > 0:
            raise ValueError(f"alpha_scale={alpha_scale!r}: expected a positive float")
        if alpha is not None and alpha < 0:
            raise ValueError(f"alpha={alpha!r}: expected None (learned) or a float >= 0")
        self.shape = (int(shape[0]), int(shape[1]))
        self.alpha_scale = float(alpha_scale)
        self.fixed_alpha = alpha

    @property
    def learns_alpha(self) -> bool:
        return self.fixed_alpha is None

    @property
    def n_params(self) -> int:
        return self.n_pattern + (1 if self.learns_alpha else 0)

    def pattern(self, lam_pattern: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def pattern_vjp(self, lam_pattern: torch.Tensor, g_s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def pattern_bounds(self) -> list[tuple[float | None, float | None]]:
        return [(0.0, 1.0)] * self.n_pattern

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """Box :math:`B` for L-BFGS-B: ``[0, 1]`` for weights, ``[0, inf)`` for alpha."""
        return self.pattern_bounds() + ([(0.0, None)] if self.learns_alpha else [])

    def _check(self, lam: torch.Tensor) -> None:
        if lam.ndim != 1 or lam.numel() != self.n_params:
            raise ValueError(
                f"lam has shape {tuple(lam.shape)}: expected ({self.n_params},) for {self!r}"
            )

    def __call__(self, lam: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:math:`\\lambda\\mapsto(s,\\alpha)`: centred pattern ``(H, W)`` and a float."""
        self._check(lam)
        s = self.pattern(lam[: self.n_pattern])
        if self.weights == "power":
            s = s.clamp(min=0).sqrt()
        alpha = self.alpha_scale * float(lam[-1]) if self.learns_alpha else self.fixed_alpha
        return s, float(alpha)

    def vjp(self, lam: torch.Tensor, g_s: torch.Tensor, g_alpha: float) -> torch.Tensor:
        """:math:`D_\\lambda p(\\lambda)^*(g_s,g_\\alpha)` (chain rule of App. 1.A).

        ``g_s`` is the gradient w.r.t. the pattern output: :math:`s` for ``weights="amplitude"``,
        the data weights :math:`w=s^2` for ``weights="power"``."""
        self._check(lam)
        g = self.pattern_vjp(lam[: self.n_pattern], g_s).to(lam.dtype).reshape(-1)
        if self.learns_alpha:
            tail = torch.tensor([self.alpha_scale * g_alpha], dtype=lam.dtype, device=lam.device)
            g = torch.cat([g, tail])
        return g

    def initial(self, alpha: float, dtype=torch.float64) -> torch.Tensor:
        """Full sampling with the given alpha (the thesis' initialisation, Sec. 1.3)."""
        lam = torch.ones(self.n_pattern, dtype=dtype)
        if self.learns_alpha:
            lam = torch.cat([lam, torch.tensor([alpha / self.alpha_scale], dtype=dtype)])
        return lam

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"


class FreePattern(Parametrisation):
    """Free pattern of scattered points: :math:`s=\\lambda_{1..n}` (Sec. 1.2.2)."""

    @property
    def n_pattern(self) -> int:
        return self.shape[0] * self.shape[1]

    def pattern(self, lam_pattern):
        return lam_pattern.reshape(self.shape)

    def pattern_vjp(self, lam_pattern, g_s):
        return g_s.reshape(-1)


class CartesianLines(Parametrisation):
    """Cartesian lines (App. 1.A): weight :math:`\\lambda_i` on row ``i`` (``axis=0``,
    horizontal lines) or column ``i`` (``axis=1``, the default, as :mod:`spinv.operators.sampling`);
    the chain rule sums the pixel gradient along each line.

    ``weights="amplitude"`` (the thesis): :math:`s_\\ell=\\lambda_\\ell` on line :math:`\\ell`.
    Since the data term is :math:`\\tfrac12\\|S(Fu-y)\\|^2`, the upper-level gradient
    :math:`\\partial_{s_i}L=-2s_i\\,\\mathrm{Re}(\\overline{(Fw)_i}(Fu-y)_i)` (App. 1.D)
    vanishes at :math:`s_i=0`, while the penalty slope there is :math:`2\\beta>0`: every line
    that a projected L-BFGS-B step sets to 0 is a KKT point in that coordinate and can never
    re-enter, so the optimisation can only prune lines. ``weights="power"`` learns the data
    weights :math:`w_\\ell=s_\\ell^2=\\lambda_\\ell` instead (same lower level, a
    reparametrisation in the sense of App. 1.A) with the penalty :math:`P` applied to
    :math:`w`: then :math:`\\partial_{w_i}L=-\\mathrm{Re}(\\overline{(Fw)_i}(Fu-y)_i)` is the
    first-order gain of adding line :math:`i` even where :math:`w_i=0`, and a pruned line
    re-enters when that gain exceeds the penalty slope. Binary patterns, and the penalty's
    values on them, are the same in both (:math:`s=s^2` on :math:`\\{0,1\\}`).
    """

    def __init__(self, shape, axis: int = 1, alpha_scale: float = 1e-3, alpha=None,
                 weights: str = "amplitude"):
        super().__init__(shape, alpha_scale, alpha)
        if axis not in (0, 1):
            raise ValueError(f"axis={axis!r}: expected 0 (rows) or 1 (columns)")
        if weights not in ("amplitude", "power"):
            raise ValueError(f"weights={weights!r}: expected 'amplitude' (thesis) or 'power'")
        self.axis = axis
        self.weights = weights

    @property
    def n_pattern(self) -> int:
        return self.shape[self.axis]

    def pattern(self, lam_pattern):
        if self.axis == 0:
            return lam_pattern[:, None].expand(self.shape)
        return lam_pattern[None, :].expand(self.shape)

    def pattern_vjp(self, lam_pattern, g_s):
        return g_s.sum(dim=1 - self.axis)


class FixedPattern(Parametrisation):
    """A fixed pattern ``mask``; only :math:`\\alpha` is learned (App. 1.A)."""

    n_pattern = 0

    def __init__(self, mask: torch.Tensor, alpha_scale: float = 1e-3, alpha=None):
        mask = torch.as_tensor(mask)
        super().__init__(tuple(mask.shape), alpha_scale, alpha)
        if bool((mask < 0).any()) or bool((mask > 1).any()):
            raise ValueError("mask: expected values in [0, 1]")
        self.mask = mask.to(torch.float64)

    def pattern(self, lam_pattern):
        return self.mask.to(lam_pattern.device)

    def pattern_vjp(self, lam_pattern, g_s):
        return g_s.new_zeros(0)


class DifferentiablePattern(Parametrisation):
    """Any differentiable ``fn: lambda_pattern (n,) -> s (H, W)`` (App. 1.A, general case).

    ``bounds`` gives the box for the pattern coordinates; the vector-Jacobian product uses
    :func:`torch.autograd.grad`, so ``fn`` must be written with differentiable torch ops and map
    into :math:`[0,1]`.

    >>> import torch
    >>> H = 6
    >>> r = torch.linspace(-1, 1, H, dtype=torch.float64)
    >>> rr = (r[:, None] ** 2 + r[None, :] ** 2).sqrt()
    >>> par = DifferentiablePattern((H, H), lambda t: torch.exp(-(rr / t[0]) ** 2), 1,
    ...                             bounds=[(0.05, 5.0)])
    >>> lam = torch.tensor([0.7, 1.0], dtype=torch.float64)
    >>> g = par.vjp(lam, torch.ones(H, H, dtype=torch.float64), 0.0)
    >>> h = 1e-6
    >>> fd = (par(lam + torch.tensor([h, 0.0], dtype=torch.float64))[0].sum()
    ...       - par(lam - torch.tensor([h, 0.0], dtype=torch.float64))[0].sum()) / (2 * h)
    >>> abs(float(g[0] - fd)) < 1e-6
    True
    """

    def __init__(self, shape, fn, n_pattern: int, bounds=None, alpha_scale=1e-3, alpha=None):
        super().__init__(shape, alpha_scale, alpha)
        self.fn = fn
        self._n = int(n_pattern)
        self._bounds = list(bounds) if bounds is not None else [(None, None)] * self._n
        if len(self._bounds) != self._n:
            raise ValueError(f"bounds has {len(self._bounds)} entries: expected {self._n}")

    @property
    def n_pattern(self) -> int:
        return self._n

    def pattern_bounds(self):
        return self._bounds

    def pattern(self, lam_pattern):
        return self.fn(lam_pattern)

    def pattern_vjp(self, lam_pattern, g_s):
        with torch.enable_grad():
            lp = lam_pattern.detach().clone().requires_grad_(True)
            s = self.fn(lp)
            (g,) = torch.autograd.grad(s, lp, grad_outputs=g_s.to(s.dtype))
        return g
