"""PDHG for the lower-level problem (thesis Algorithm 1, Appendix 1.C).

Splitting (Sec. 1.2.3): :math:`E(u)=F(Ku)+G(u)` with :math:`K=(I,A)`,
:math:`F_1(v_1)=\\tfrac12\\|S(Fv_1-y)\\|^2`, :math:`F_2(v_2)=\\alpha Q(v_2)` and
:math:`G(u)=\\tfrac\\varepsilon2\\|u\\|^2`. The proximal maps are explicit:

* :math:`\\mathrm{prox}_{tF_1}(v)=F^{-1}(I+tS^2)^{-1}(Fv+tS^2y)` (Eq. 1.11; the data
  here are fully sampled, hence :math:`S^2y`), so by Moreau's identity the dual update is the
  k-space diagonal map :math:`\\hat v_1\\mapsto s^2(\\hat v_1-\\sigma y)/(\\sigma+s^2)`;
* :math:`\\mathrm{prox}_{tF_2}(x)_i=C(|x_i|,t\\alpha)\\,x_i/|x_i|` with
  :math:`(1+t\\alpha\\phi(C))C=|x_i|` (App. 1.C.1);
* :math:`\\mathrm{prox}_{\\tau G}(u)=u/(1+\\varepsilon\\tau)`.

The step sizes of App. 1.C.2 give a linear rate: with :math:`\\|A\\|\\le L` and
:math:`\\eta=\\max(\\max_i s_i^2,\\ \\alpha L_J)` (:math:`L_J` from Eq. 1.15),
:math:`\\mu=2\\sqrt{\\varepsilon/((1+L^2)\\eta)}`, :math:`\\tau=\\mu/(2\\varepsilon)`,
:math:`\\sigma=\\mu\\eta/2`, :math:`\\theta=1/(1+\\mu)`. The first dual block is kept in
k-space, so an iteration costs one FFT pair, one :math:`A` and one :math:`A^*`. The whole batch
runs at once and the stopping rule of Algorithm 1,
:math:`\\|u^{k+1}-u^k\\|/\\|u^k\\|+\\|v^{k+1}-v^k\\|/\\|v^k\\|\\le\\mathrm{tol}`, must hold for
every image. Pass the returned ``state`` back to warm-start.

Why not :func:`spinv.variational.solvers.pdhg.pdhg` with
``[FourierDataBlock(s, s*y), RegulariserBlock(...)]``: that runs the same iteration (same
splitting, steps and iterates to rounding, ``tests/bilevel/test_solvers.py``), but

- it consumes the variational regulariser type, while the lower level carries
  :class:`~spinv.bilevel.lower_level.Regulariser` (operator with ``norm_bound``, :math:`\\rho`
  and the derivatives of App. 1.D that Newton-CG and the implicit gradient need; wavelet and
  dTV operators of their own);
- the warm start passes the dual data block in k-space (``state=(u, v1_hat, v2)``) from one
  upper-level iteration to the next, where the pattern :math:`s` has changed;
- switching would change the stored sampling results at rounding level (they are compared bit
  for bit), for no gain in speed (one FFT pair per iteration either way).

Merging the two needs the single regulariser abstraction first (see
:mod:`spinv.variational.regularisers`).

>>> import torch
>>> from spinv.bilevel.lower_level import LowerLevel, make_regulariser
>>> u0 = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
>>> ll = LowerLevel.from_images(u0, make_regulariser("tv", gamma=0.01), noise=0.01, eps=1e-4)
>>> s = torch.ones(16, 16, dtype=torch.float64)
>>> res = pdhg(ll, s, alpha=1e-3, tol=1e-8, maxit=5000)
>>> g = ll.gradient(res.u, s, 1e-3)
>>> bool(g.abs().max() < 1e-4)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spinv.bilevel.lower_level import LowerLevel
from spinv.linalg import inner
from spinv.variational.regularisers import modulus

__all__ = ["pdhg", "PDHGResult", "pdhg_parameters"]


@dataclass
class PDHGResult:
    """Output of :func:`pdhg`: the primal iterate, the dual state and iteration counts."""

    u: torch.Tensor
    state: tuple
    iterations: int
    converged: bool
    criterion: float


def pdhg_parameters(
    ll: LowerLevel, s: torch.Tensor, alpha: float, bound: str = "thesis"
) -> tuple[float, float, float]:
    """Step sizes ``(tau, sigma, theta)`` of App. 1.C.2 for the linear rate.

    ``bound`` selects the smoothness constant of :math:`F_2` (App. 1.C.3 or the tight one,
    see :meth:`Regulariser.smoothness`); a smaller constant gives a larger :math:`\\mu`.
    """
    smax2 = float(s.max()) ** 2
    if ll.reg.is_none or alpha == 0:
        lnorm, c = 0.0, 0.0
    else:
        lnorm, c = ll.reg.op.norm_bound, alpha * ll.reg.smoothness(bound)
    eta = max(smax2, c, 1e-12)
    eps = ll.eps
    mu = 2 * math.sqrt(eps / ((1 + lnorm**2) * eta))
    return mu / (2 * eps), mu * eta / 2, 1 / (1 + mu)


@torch.no_grad()
def pdhg(
    ll: LowerLevel,
    s: torch.Tensor,
    alpha: float,
    state: tuple | None = None,
    maxit: int = 2000,
    tol: float = 1e-6,
    check_every: int = 10,
    steps: tuple[float, float, float] | None = None,
    bound: str = "thesis",
) -> PDHGResult:
    """Solve Eq. (1.3) with Algorithm 1. ``state=(u, v1_hat, v2)`` warm-starts.

    ``steps=(tau, sigma, theta)`` overrides App. 1.C.2 (must satisfy
    :math:`\\tau\\sigma(1+L^2)\\le1`); ``bound`` as in :func:`pdhg_parameters`. Without
    ``state`` the start is the zero-filled reconstruction :math:`F^{-1}S^2y` with zero duals.
    """
    if maxit < 1:
        raise ValueError(f"maxit={maxit!r}: expected a positive integer")
    tau, sigma, theta = steps if steps is not None else pdhg_parameters(ll, s, alpha, bound)
    sf = ll.fft_pattern(s)
    s2 = sf * sf
    y = ll.y_fft
    use_reg = not ll.reg.is_none and alpha != 0
    op = ll.reg.op
    if state is None:
        u = ll.zero_filled(s)
        v1 = torch.zeros_like(y)
        v2 = torch.zeros_like(op(u)) if use_reg else None
    else:
        u, v1, v2 = state
        if use_reg and v2 is None:
            v2 = torch.zeros_like(op(u))
    ubar = u.clone()
    # dual data block: v1_hat <- s^2 (v1_hat + sigma F ubar - sigma y) / (sigma + s^2)
    dual_scale = s2 / (sigma + s2)
    y_scaled = sigma * dual_scale * y  # the constant part, precomputed
    shrink_g = 1.0 / (1.0 + ll.eps * tau)
    rho = ll.reg.rho if use_reg else None
    it, crit, converged = 0, float("inf"), False
    for it in range(1, maxit + 1):
        check = it % check_every == 0 or it == maxit
        khat = torch.fft.fft2(ubar, norm="ortho")
        v1_new = torch.add(v1, khat, alpha=sigma).mul_(dual_scale).sub_(y_scaled)
        kstar = torch.fft.ifft2(v1_new, norm="ortho")
        if use_reg:
            x = torch.add(v2, op(ubar), alpha=sigma)
            # prox of sigma F2* by Moreau: x - sigma prox_{F2/sigma}(x / sigma) = f(|x|) x
            # (Rho.dual_factor; closed form for the Huber rho, App. 1.C.1)
            v2_new = x.mul_(rho.dual_factor(modulus(x, 2), sigma, alpha))
            kstar.add_(op.adjoint(v2_new))
        u_new = torch.add(u, kstar, alpha=-tau).mul_(shrink_g)
        ubar = torch.add(u_new, u_new - u, alpha=theta)
        if check:
            # Algorithm 1 residual, norms from the real inner product of spinv.linalg
            du, d1 = u_new - u, v1_new - v1
            du = inner(du, du).sqrt() / inner(u, u).sqrt().clamp_min(1e-300)
            dv = inner(d1, d1).sqrt() / inner(v1, v1).sqrt().clamp_min(1e-300)
            if use_reg:
                d2 = v2_new - v2
                dv = dv + inner(d2, d2).sqrt() / inner(v2, v2).sqrt().clamp_min(1e-300)
            crit = float((du + dv).max())
        u, v1 = u_new, v1_new
        if use_reg:
            v2 = v2_new
        if check and crit <= tol:
            converged = True
            break
    return PDHGResult(u=u, state=(u, v1, v2), iterations=it, converged=converged, criterion=crit)
