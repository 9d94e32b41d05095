"""The upper-level problem (thesis Eq. 1.2, Algorithm 3) solved with L-BFGS-B.

.. math::  \\min_{\\lambda\\in B}\\ \\frac1N\\sum_{i=1}^N
           \\tfrac12\\|\\hat u_i(p(\\lambda))-u_i^*\\|^2+P(p(\\lambda))\\qquad(1.2)

:class:`BilevelObjective` is Algorithm 3 for a parametrisation (App. 1.A): the whole training
set is one batched lower-level solve, warm-started from the previous evaluation (solution and
adjoint), and it counts evaluations, lower-level iterations and CG iterations. :func:`learn`
drives :func:`scipy.optimize.minimize` (``method="L-BFGS-B"`` with the parametrisation's
box). :func:`tune_alpha` learns :math:`\\alpha` for a fixed pattern (used for the full-sampling
initialisation of Sec. 1.3, for thresholded patterns and for baselines) and
:func:`threshold_and_retune` implements the thresholding of Sec. 1.3.3.

Effective lower-level solves (Table 1.4): each evaluation needs one lower-level solve and one
adjoint solve of comparable cost, so ``effective_solves = 2 * evaluations`` (the training batch
counts as one solve, as for the Gozcu count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import torch

from spinv.bilevel.implicit import SolverOptions, loss_and_gradient, solve_lower
from spinv.bilevel.lower_level import LowerLevel
from spinv.bilevel.parametrisations import (
    FixedPattern,
    Parametrisation,
    sampling_rate,
    sparsity_penalty,
)

__all__ = [
    "BilevelObjective",
    "LearnResult",
    "learn",
    "learn_continuation",
    "projected_gradient",
    "tune_alpha",
    "threshold_and_retune",
    "reconstruct",
    "evaluate_pattern",
]


class BilevelObjective:
    """Algorithm 3: ``f(lam) -> (value, gradient)`` as numpy float64 (for L-BFGS-B)."""

    def __init__(
        self,
        ll: LowerLevel,
        param: Parametrisation,
        beta: float = 0.0,
        opts: SolverOptions | None = None,
    ):
        if tuple(param.shape) != tuple(ll.shape):
            raise ValueError(f"param.shape={param.shape} does not match the data {ll.shape}")
        self.ll, self.param, self.beta = ll, param, float(beta)
        self.opts = opts or SolverOptions()
        self.state = None
        self.adjoint = None
        self.evaluations = 0
        self.inner_iterations = 0
        self.cg_iterations = 0
        self.last = None  # (lam, value, loss, s, alpha)

    @property
    def effective_solves(self) -> int:
        return 2 * self.evaluations

    def __call__(self, lam_np: np.ndarray) -> tuple[float, np.ndarray]:
        lam = torch.as_tensor(np.asarray(lam_np, dtype=np.float64))
        s, alpha = self.param(lam)
        lg = loss_and_gradient(
            self.ll, s, alpha, self.opts, state=self.state, adjoint0=self.adjoint
        )
        self.state, self.adjoint = lg.state, lg.adjoint
        self.evaluations += 1
        self.inner_iterations += lg.inner_iterations
        self.cg_iterations += lg.cg_iterations
        if self.param.weights == "power":  # pattern coordinates are the weights w = s**2
            pen, gpen = sparsity_penalty(s * s, self.beta)
            grad = self.param.vjp(lam, lg.grad_w + gpen, lg.grad_alpha)
        else:
            pen, gpen = sparsity_penalty(s, self.beta)
            grad = self.param.vjp(lam, lg.grad_s + gpen, lg.grad_alpha)
        value = lg.loss + float(pen)
        self.last = (lam.clone(), value, lg.loss, s, alpha)
        return value, grad.cpu().numpy().astype(np.float64)


@dataclass
class LearnResult:
    """Learned ``pattern`` (centred ``(H, W)`` float64), ``alpha``, the L-BFGS-B parameter,
    per-iteration history and work counts."""

    pattern: torch.Tensor
    alpha: float
    lam: np.ndarray
    objective: float
    loss: float
    sampling_rate: float
    iterations: int
    evaluations: int
    effective_solves: int
    inner_iterations: int
    cg_iterations: int
    seconds: float
    message: str
    history: list = field(default_factory=list)
    #: :math:`\\|\\lambda-\\Pi_B(\\lambda-\\nabla f(\\lambda))\\|_\\infty` at the returned point
    #: (0 at a KKT point of the box-constrained problem), as L-BFGS-B's ``pgtol`` measures it.
    projected_gradient: float = float("nan")


def learn(
    ll: LowerLevel,
    param: Parametrisation,
    beta: float = 0.0,
    lam0: torch.Tensor | np.ndarray | None = None,
    alpha0: float = 1e-3,
    maxiter: int = 100,
    opts: SolverOptions | None = None,
    callback=None,
    ftol: float = 1e-9,
    gtol: float = 1e-7,
) -> LearnResult:
    """Solve Eq. (1.2) for ``param`` with L-BFGS-B (Byrd et al. 1995) from ``lam0``.

    Without ``lam0`` the start is full sampling with ``alpha0`` (Sec. 1.3).
    ``callback(record)`` gets a dict per L-BFGS-B iteration with ``iteration``, ``objective``,
    ``loss``, ``sampling_rate``, ``alpha``, ``seconds`` and ``effective_solves``.
    """
    if maxiter < 1:
        raise ValueError(f"maxiter={maxiter!r}: expected a positive integer")
    obj = BilevelObjective(ll, param, beta, opts)
    x0 = param.initial(alpha0) if lam0 is None else torch.as_tensor(lam0, dtype=torch.float64)
    x0 = np.asarray(x0, dtype=np.float64)
    history: list = []
    t0 = time.perf_counter()
    cache: dict = {}

    def fun(x):
        v, g = obj(x)
        cache["x"], cache["v"], cache["loss"] = x.copy(), v, obj.last[2]
        return v, g

    def cb(xk, *args):
        if "x" not in cache or not np.array_equal(cache["x"], xk):
            fun(xk)
        s, alpha = param(torch.as_tensor(xk))
        rec = {
            "iteration": len(history) + 1,
            "objective": float(cache["v"]),
            "loss": float(cache["loss"]),
            "sampling_rate": sampling_rate(s),
            "alpha": float(alpha),
            "seconds": time.perf_counter() - t0,
            "effective_solves": obj.effective_solves,
        }
        history.append(rec)
        if callback is not None:
            callback(rec)

    res = scipy.optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=param.bounds(),
        callback=cb,
        options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol, "maxcor": 10},
    )
    lam = torch.as_tensor(res.x)
    s, alpha = param(lam)
    return LearnResult(
        projected_gradient=projected_gradient(res.x, res.jac, param.bounds()),
        pattern=s.detach().clone(),
        alpha=float(alpha),
        lam=np.asarray(res.x),
        objective=float(res.fun),
        loss=float(res.fun)
        - float(sparsity_penalty(s * s if param.weights == "power" else s, beta)[0]),
        sampling_rate=sampling_rate(s),
        iterations=int(res.nit),
        evaluations=obj.evaluations,
        effective_solves=obj.effective_solves,
        inner_iterations=obj.inner_iterations,
        cg_iterations=obj.cg_iterations,
        seconds=time.perf_counter() - t0,
        message=str(res.message),
        history=history,
    )


def projected_gradient(x: np.ndarray, g: np.ndarray, bounds) -> float:
    """:math:`\\|x-\\Pi_B(x-g)\\|_\\infty` for the box ``bounds`` (``None`` = unbounded).

    >>> projected_gradient(np.array([0.0, 0.5]), np.array([2.0, -0.25]), [(0, 1), (0, None)])
    0.25
    """
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds], dtype=np.float64)
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds], dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(x - np.clip(x - np.asarray(g), lo, hi)), initial=0.0))


def learn_continuation(
    ll: LowerLevel,
    param: Parametrisation,
    beta: float,
    fractions: list[float] | tuple[float, ...] = (1.0,),
    lam0: torch.Tensor | np.ndarray | None = None,
    alpha0: float = 1e-3,
    maxiter: int = 100,
    opts: SolverOptions | None = None,
    callback=None,
) -> LearnResult:
    """Eq. (1.2) at ``beta`` by continuation: solve at :math:`\\beta f_1<\\dots<\\beta f_K=
    \\beta` in turn, each stage warm-started from the previous stage's :math:`\\lambda`.

    Why: :math:`\\partial_{s_i}L\\propto s_i` (App. 1.D) while the penalty slope at
    :math:`s_i=0` is :math:`2\\beta`, so a weight that an L-BFGS-B step sets to 0 stays there
    (a KKT point in that coordinate); from full sampling at the final :math:`\\beta`, the first
    few large steps decide irreversibly which lines survive. Raising :math:`\\beta` gradually
    makes these decisions at near-stationary points of milder problems. ``fractions=(1.0,)``
    is the plain :func:`learn`. The result has the last stage's pattern, objective and loss,
    the work counts and history summed over the stages (history records carry ``beta``).

    >>> learn_continuation(None, None, 0.1, fractions=(0.5, 0.2))
    Traceback (most recent call last):
    ...
    ValueError: fractions=(0.5, 0.2): expected an increasing sequence in (0, 1] ending at 1
    """
    fr = [float(f) for f in fractions]
    if not fr or fr[-1] != 1.0 or any(not 0 < f <= 1 for f in fr) or fr != sorted(set(fr)):
        raise ValueError(f"fractions={fractions!r}: expected an increasing sequence in (0, 1] "
                         "ending at 1")
    lam = lam0
    history: list = []
    counts = dict(iterations=0, evaluations=0, effective_solves=0, inner_iterations=0,
                  cg_iterations=0, seconds=0.0)
    res = None
    for f in fr:
        def cb(rec, b=beta * f):
            rec = {**rec, "iteration": len(history) + 1, "beta": b,
                   "seconds": counts["seconds"] + rec["seconds"],
                   "effective_solves": counts["effective_solves"] + rec["effective_solves"]}
            history.append(rec)
            if callback is not None:
                callback(rec)

        res = learn(ll, param, beta * f, lam0=lam, alpha0=alpha0, maxiter=maxiter, opts=opts,
                    callback=cb)
        lam = res.lam
        for k in counts:
            counts[k] += getattr(res, k)
    return LearnResult(
        pattern=res.pattern, alpha=res.alpha, lam=res.lam, objective=res.objective,
        loss=res.loss, sampling_rate=res.sampling_rate, message=res.message, history=history,
        projected_gradient=res.projected_gradient, **counts,
    )


def tune_alpha(
    ll: LowerLevel,
    mask: torch.Tensor,
    alpha0: float = 1e-3,
    alpha_scale: float | None = None,
    maxiter: int = 30,
    opts: SolverOptions | None = None,
) -> LearnResult:
    """Optimal :math:`\\alpha` for a fixed pattern (App. 1.A, second bullet) by L-BFGS-B."""
    if ll.reg.is_none:
        s = torch.as_tensor(mask, dtype=torch.float64)
        obj = BilevelObjective(ll, FixedPattern(s, alpha=0.0), 0.0, opts)
        value, _ = obj(np.zeros(0))
        return LearnResult(s, 0.0, np.zeros(0), value, value, sampling_rate(s), 0, 1, 2, 0, 0,
                           0.0, "closed form (alpha = 0)")
    scale = alpha_scale if alpha_scale is not None else max(alpha0, 1e-8)
    par = FixedPattern(torch.as_tensor(mask, dtype=torch.float64), alpha_scale=scale)
    return learn(ll, par, 0.0, lam0=np.array([alpha0 / scale]), maxiter=maxiter, opts=opts)


def threshold_and_retune(
    ll: LowerLevel,
    pattern: torch.Tensor,
    alpha: float,
    threshold: float = 0.0,
    maxiter: int = 30,
    opts: SolverOptions | None = None,
    alpha_scale: float | None = None,
) -> LearnResult:
    """Binarise :math:`p_i\\mapsto 1` if :math:`p_i>` ``threshold`` else 0 and re-learn
    :math:`\\alpha` on the training set (Sec. 1.3.3).

    ``alpha_scale`` (e.g. the full-sampling :math:`\\alpha`) fixes the L-BFGS-B variable's
    scale; with it, a learned ``alpha`` below ``1e-3 * alpha_scale`` (a continuous pattern can
    learn :math:`\\alpha=0`, its small weights acting as the regulariser) is no useful start for
    the binary pattern, and the tuning starts from ``alpha_scale`` instead.
    """
    binary = (pattern > threshold).to(torch.float64)
    alpha0 = max(alpha, 1e-8)
    if alpha_scale is not None and alpha < 1e-3 * alpha_scale:
        alpha0 = alpha_scale
    return tune_alpha(ll, binary, alpha0=alpha0, alpha_scale=alpha_scale, maxiter=maxiter,
                      opts=opts)


@torch.no_grad()
def reconstruct(
    ll: LowerLevel,
    pattern: torch.Tensor,
    alpha: float,
    opts: SolverOptions | None = None,
    chunk: int = 16,
) -> torch.Tensor:
    """Lower-level reconstructions :math:`\\hat u` for every image of ``ll`` (in chunks)."""
    opts = opts or SolverOptions()
    outs = []
    for i in range(0, ll.y.shape[0], chunk):
        sub = ll.subset(slice(i, i + chunk))
        u, _, _ = solve_lower(sub, pattern.to(torch.float64), alpha, opts)
        outs.append(u)
    return torch.cat(outs)


def evaluate_pattern(
    ll: LowerLevel,
    pattern: torch.Tensor,
    alpha: float,
    opts: SolverOptions | None = None,
) -> dict:
    """PSNR/SSIM (``spinv.metrics``) of :math:`|\\hat u|` against the ground truth, as
    ``{"psnr": mean, "psnr_std", "ssim", "ssim_std", "sampling_rate", "n_images"}``."""
    from spinv.metrics import psnr, ssim

    if ll.u_true is None:
        raise ValueError("ll.u_true is None: evaluation needs ground-truth images")
    u = reconstruct(ll, pattern, alpha, opts)
    rec = u.abs().to(torch.float32)
    ref = ll.u_true.real.to(torch.float32)
    p = psnr(rec, ref, data_range=1.0)
    q = ssim(rec, ref, data_range=1.0)
    return {
        "psnr": float(p.mean()),
        "psnr_std": float(p.std()) if p.numel() > 1 else 0.0,
        "ssim": float(q.mean()),
        "ssim_std": float(q.std()) if q.numel() > 1 else 0.0,
        "sampling_rate": sampling_rate(pattern),
        "n_images": int(p.numel()),
    }
