"""Primal-dual hybrid gradient (Chambolle & Pock 2011) for :math:`\\min_x \\sum_j F_j(K_jx)+G(x)`.

Thesis §1.2.3 writes the lower-level energy (Eq. 1.3) as :math:`F(Ku)+G(u)` with
:math:`K=(\\text{forward operator}, A)` stacking the data term and the regulariser's operator,
and :math:`G(u)=\\tfrac\\varepsilon2\\|u\\|^2`. One iteration (Algorithm 1) is

.. math::
    v^{k+1} = \\operatorname{prox}_{\\sigma F^*}(v^k + \\sigma K\\bar x^k),\\quad
    x^{k+1} = \\operatorname{prox}_{\\tau G}(x^k - \\tau K^*v^{k+1}),\\quad
    \\bar x^{k+1} = x^{k+1} + \\theta(x^{k+1}-x^k),

stopped when :math:`\\|x^{k+1}-x^k\\|/\\|x^k\\| + \\|v^{k+1}-v^k\\|/\\|v^k\\|\\le`
``tol`` (for every image of the batch). :math:`K\\bar x` is formed from :math:`Kx^{k+1}` and
:math:`Kx^k` by linearity when the objective :math:`F(Kx^{k+1})+G(x^{k+1})` is tracked (it
then comes for free), else :math:`K` is applied to :math:`\\bar x` directly; either way an
iteration costs one :math:`K` and one :math:`K^*`.

Step rules (``step_rule``):

* ``"standard"``: :math:`\\tau=\\sigma=0.99/\\|K\\|`, :math:`\\theta=1` (CP 2011, Alg. 1);
* ``"strongly_convex"`` (thesis Appendix 1.C.2; CP 2011, Alg. 3), for :math:`G`
  :math:`\\varepsilon`-strongly convex and :math:`F` :math:`\\eta`-smooth:
  :math:`\\mu = 2\\sqrt{\\varepsilon/(\\|K\\|^2\\eta)}`, :math:`\\tau=\\mu/(2\\varepsilon)`,
  :math:`\\sigma=\\mu\\eta/2`, :math:`\\theta=1/(1+\\mu)`; then
  :math:`\\|x^k-x^*\\|^2 = O((1+\\mu)^{-k})` (rate stored in ``history.extra["rate"]``);
* ``"accelerated"`` (CP 2011, Alg. 2) for :math:`G` :math:`\\varepsilon`-strongly convex only:
  :math:`\\theta_k=1/\\sqrt{1+2\\varepsilon\\tau_k}`, :math:`\\tau_{k+1}=\\theta_k\\tau_k`,
  :math:`\\sigma_{k+1}=\\sigma_k/\\theta_k`;
* ``"auto"``: strongly convex if :math:`\\varepsilon>0` and every block is smooth, accelerated
  if only :math:`\\varepsilon>0`, standard otherwise.

The primal variable ``x`` may be a tensor or a tuple of tensors (TGV uses :math:`(u, w)`).

>>> import torch
>>> from spinv.operators import Identity
>>> y = torch.tensor([[[[2.0, -1.0]]]], dtype=torch.float64)
>>> x, h = pdhg([LeastSquaresBlock(Identity(), y)], torch.zeros_like(y),
...             PDHGOptions(iterations=500, tol=1e-12), epsilon=1.0)
>>> [round(v, 6) for v in x.flatten().tolist()]   # argmin |x-y|^2/2 + |x|^2/2 = y/2
[1.0, -0.5]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from spinv.linalg import norm, squared_norm
from spinv.variational.solvers.history import History, check_iterations, check_number

Tensor = torch.Tensor
Primal = Tensor | tuple

STEP_RULES = ("auto", "standard", "strongly_convex", "accelerated")


@dataclass(frozen=True)
class PDHGOptions:
    """Knobs of :func:`pdhg` (Algorithm 1 of thesis §1.2.3; Chambolle & Pock 2011).

    ``iterations``: at most this many iterations (>= 0). ``tol``: stop when the Algorithm 1
    residual :math:`\\|x^{k+1}-x^k\\|/\\|x^k\\|+\\|v^{k+1}-v^k\\|/\\|v^k\\|` is
    ``<= tol`` for every image (0: run all iterations). ``step_rule``: ``"auto"``,
    ``"standard"`` (CP 2011 Alg. 1), ``"strongly_convex"`` (thesis Appendix 1.C.2, CP 2011
    Alg. 3) or ``"accelerated"`` (CP 2011 Alg. 2), see the module docstring. ``tau``,
    ``sigma``, ``theta``: primal step, dual step and extrapolation at the start, overriding the
    rule's (``None``: the rule's; the accelerated rule updates them after every iteration).
    ``op_norm``: a bound of :math:`\\|K\\|` for the step rule (``None``:
    :math:`(\\sum_j\\|K_j\\|^2)^{1/2}` from the blocks' bounds). ``track_objective``: record
    :math:`\\sum_jF_j(K_jx)+G(x)` in the history (it then costs nothing extra: :math:`K\\bar x`
    is formed by linearity). ``check_every``: evaluate the residual, the objective and the
    stopping rule only every ``check_every`` iterations and at the last one (``nan`` is recorded
    in between); the iterates do not depend on it. :func:`pdhg_iterates` uses the step knobs
    and ``track_objective`` only.
    """

    iterations: int = 1000
    tol: float = 1e-6
    step_rule: str = "auto"
    tau: float | None = None
    sigma: float | None = None
    theta: float | None = None
    op_norm: float | None = None
    track_objective: bool = True
    check_every: int = 1

    def __post_init__(self) -> None:
        check_iterations(self.iterations, "PDHGOptions.iterations")
        check_number(self.tol, "PDHGOptions.tol", inclusive=True)
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"PDHGOptions.step_rule={self.step_rule!r}: expected one of "
                             f"{', '.join(map(repr, STEP_RULES))}")
        for name in ("tau", "sigma", "op_norm"):
            check_number(getattr(self, name), f"PDHGOptions.{name}", optional=True)
        check_number(self.theta, "PDHGOptions.theta", inclusive=True, optional=True)
        if not isinstance(self.track_objective, bool):
            raise TypeError(f"PDHGOptions.track_objective={self.track_objective!r}: expected a "
                            "bool")
        check_iterations(self.check_every, "PDHGOptions.check_every", 1)

    def initial_steps(self, steps: dict) -> tuple[float, float, float]:
        """``(tau, sigma, theta)`` at the start: these options' overrides, else the values of
        the rule ``steps`` (from :func:`step_sizes`)."""
        return (float(self.tau if self.tau is not None else steps["tau"]),
                float(self.sigma if self.sigma is not None else steps["sigma"]),
                float(self.theta if self.theta is not None else steps["theta"]))


def _map(fn, *xs):
    if isinstance(xs[0], tuple):
        return tuple(fn(*a) for a in zip(*xs, strict=True))
    return fn(*xs)


def _bsq(x: Primal) -> Tensor:
    if isinstance(x, tuple):
        return sum(squared_norm(t) for t in x)
    return squared_norm(x)


def _pnorm(x: Primal) -> Tensor:
    return norm(x) if not isinstance(x, tuple) else _bsq(x).sqrt()


def _bdist(a: Primal, b: Primal) -> Tensor:
    """Distance per image."""
    if isinstance(a, tuple):
        return sum(squared_norm(s - t) for s, t in zip(a, b, strict=True)).sqrt()
    return norm(a - b)


def _dual_norm(v: Sequence[Tensor]) -> Tensor:
    """Norm per image of the stacked dual variable."""
    if len(v) == 1:
        return norm(v[0])
    return torch.stack([norm(t) for t in v]).square().sum(dim=0).sqrt()


def _batch(x: Primal) -> Tensor:
    return x[0] if isinstance(x, tuple) else x


class DualBlock:
    """One term :math:`F_j(K_jx)` of the PDHG splitting.

    Subclasses implement ``op`` (:math:`K_j`), ``op_adjoint``, ``dual_prox``
    (:math:`\\operatorname{prox}_{\\sigma F_j^*}`), ``value`` (:math:`F_j`, per image) and set
    ``op_norm`` (upper bound of :math:`\\|K_j\\|`) and ``smoothness`` (of :math:`F_j`, or None).
    """

    op_norm: float = 1.0
    smoothness: float | None = None

    def op(self, x: Primal) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def op_adjoint(self, q: Tensor) -> Primal:  # pragma: no cover - abstract
        raise NotImplementedError

    def dual_prox(self, q: Tensor, sigma: float) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class LeastSquaresBlock(DualBlock):
    """:math:`F(z) = \\tfrac w2\\|z-y\\|^2` with :math:`K` = ``operator`` (the data term).

    :math:`F^*(q)=\\|q\\|^2/(2w)+\\mathrm{Re}\\langle q,y\\rangle`, so
    :math:`\\operatorname{prox}_{\\sigma F^*}(q) = (q-\\sigma y)/(1+\\sigma/w)`; smoothness
    :math:`w`. For MRI with ``operator = SubsampledFourier(S)`` and ``y = S(Fu+\\eta)`` this is
    :math:`\\tfrac12\\|S(Fu-y)\\|^2` of Eq. (1.3) for a binary mask. ``op_norm`` defaults to
    ``1.01 * operator.norm(shape)`` (power iteration) when ``shape`` is given, else to
    ``operator.norm()`` if the operator knows its shape.
    """

    def __init__(
        self,
        operator,
        y: Tensor,
        weight: float = 1.0,
        op_norm: float | None = None,
        shape: tuple | None = None,
    ) -> None:
        if not callable(operator) or not hasattr(operator, "adjoint"):
            raise TypeError(f"operator={operator!r}: expected a LinearOperator")
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y: expected a torch.Tensor, got {type(y).__name__}")
        if not weight > 0:
            raise ValueError(f"weight={weight!r}: expected a positive float")
        self.operator, self.y, self.weight = operator, y, float(weight)
        if op_norm is None:
            from spinv.operators.base import Identity

            if isinstance(operator, Identity):
                op_norm = 1.0
            else:
                op_norm = 1.01 * operator.norm(shape)
        self.op_norm = float(op_norm)
        self.smoothness = self.weight

    def op(self, x: Tensor) -> Tensor:
        return self.operator(x)

    def op_adjoint(self, q: Tensor) -> Tensor:
        return self.operator.adjoint(q)

    def dual_prox(self, q: Tensor, sigma: float) -> Tensor:
        return torch.add(q, self.y, alpha=-sigma).mul_(1.0 / (1.0 + sigma / self.weight))

    def value(self, z: Tensor) -> Tensor:
        return 0.5 * self.weight * squared_norm(z - self.y)


class RegulariserBlock(DualBlock):
    """Adapter of a :class:`~spinv.variational.regularisers.Regulariser` (``R = F_2 \\circ A``)."""

    def __init__(self, regulariser) -> None:
        self.reg = regulariser
        self.op_norm = float(regulariser.op_norm)
        self.smoothness = regulariser.smoothness

    def op(self, x: Tensor) -> Tensor:
        return self.reg.op(x)

    def op_adjoint(self, q: Tensor) -> Tensor:
        return self.reg.op_adjoint(q)

    def dual_prox(self, q: Tensor, sigma: float) -> Tensor:
        return self.reg.dual_prox(q, sigma)

    def value(self, z: Tensor) -> Tensor:
        return self.reg.dual_value(z)


def step_sizes(
    blocks: Sequence[DualBlock],
    epsilon: float = 0.0,
    step_rule: str = "auto",
    op_norm: float | None = None,
) -> dict:
    """Step sizes of the chosen rule (see module docstring); returns a dict with
    ``rule, tau, sigma, theta, op_norm`` and, for the strongly convex rule, ``mu, eta, rate``."""
    if op_norm is None:
        op_norm = math.sqrt(sum(b.op_norm**2 for b in blocks))
    smooth = all(b.smoothness is not None for b in blocks)
    if step_rule == "auto":
        step_rule = "standard" if epsilon <= 0 else ("strongly_convex" if smooth else "accelerated")
    if step_rule not in ("standard", "strongly_convex", "accelerated"):
        raise ValueError(
            f"step_rule={step_rule!r}: expected 'auto', 'standard', 'strongly_convex' or "
            "'accelerated'"
        )
    if step_rule != "standard" and not epsilon > 0:
        raise ValueError(f"epsilon={epsilon!r}: step_rule={step_rule!r} needs epsilon > 0")
    out = {"rule": step_rule, "op_norm": op_norm}
    if step_rule == "strongly_convex":
        if not smooth:
            raise ValueError("step_rule='strongly_convex' needs every F_j smooth (not TV/TGV)")
        eta = max(b.smoothness for b in blocks)
        mu = 2.0 * math.sqrt(epsilon / (op_norm**2 * eta))
        out.update(
            tau=mu / (2 * epsilon),
            sigma=mu * eta / 2,
            theta=1 / (1 + mu),
            mu=mu,
            eta=eta,
            rate=1 / (1 + mu),
        )
    else:
        out.update(tau=0.99 / op_norm, sigma=0.99 / op_norm, theta=1.0)
    return out


def _default_g(epsilon: float):
    """``(prox, value)`` of the default :math:`G(x)=\\tfrac\\varepsilon2\\|x\\|^2`:
    :math:`\\operatorname{prox}_{tG}(x)=x/(1+t\\varepsilon)` (the identity for
    :math:`\\varepsilon=0`)."""

    def prox(x, t):
        return _map(lambda a: a / (1.0 + t * epsilon), x) if epsilon > 0 else x

    def value(x):
        return 0.5 * epsilon * _bsq(x)

    return prox, value


def pdhg_iterates(
    blocks: Sequence[DualBlock],
    x0: Primal,
    options: PDHGOptions | None = None,
    *,
    epsilon: float = 0.0,
    g_prox: Callable[[Primal, float], Primal] | None = None,
    g_value: Callable[[Primal], Tensor] | None = None,
    v0: Sequence[Tensor] | None = None,
) -> Iterator[tuple[Primal, list[Tensor], Tensor, Tensor | None]]:
    """Generator of PDHG iterates: yields ``(x, v, residual, objective)`` after each iteration,
    without end.

    ``residual`` is the Algorithm 1 quantity per image ``(B,)``; ``objective`` is
    :math:`\\sum_jF_j(K_jx)+G(x)` per image (``None`` unless ``options.track_objective``). Same
    arguments as :func:`pdhg`; of ``options`` only the step knobs and ``track_objective`` count.
    """
    options = PDHGOptions() if options is None else options
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError(f"blocks={blocks!r}: expected a non-empty list of DualBlock")
    if not epsilon >= 0:
        raise ValueError(f"epsilon={epsilon!r}: expected a float >= 0")
    steps = step_sizes(blocks, epsilon, options.step_rule, options.op_norm)
    tau_k, sigma_k, theta_k = options.initial_steps(steps)
    compute_objective = options.track_objective
    accelerated = steps["rule"] == "accelerated"
    default_prox, default_value = _default_g(epsilon)
    g_prox = default_prox if g_prox is None else g_prox
    g_value = default_value if g_value is None else g_value
    x = _map(torch.clone, x0) if isinstance(x0, tuple) else x0.clone()
    kx = [b.op(x) for b in blocks]
    kxbar = kx
    v = [torch.zeros_like(z) for z in kx] if v0 is None else [t.clone() for t in v0]
    tiny = torch.finfo(_batch(x).real.dtype).tiny
    x_norm = _pnorm(x)
    v_norm = _dual_norm(v)
    while True:
        v_new = [
            b.dual_prox(torch.add(vi, ki, alpha=sigma_k), sigma_k)
            for b, vi, ki in zip(blocks, v, kxbar, strict=True)
        ]
        kstar = None
        for b, vi in zip(blocks, v_new, strict=True):
            t = b.op_adjoint(vi)
            kstar = t if kstar is None else _map(torch.add, kstar, t)
        step = -tau_k
        x_new = g_prox(_map(lambda a, c, s=step: torch.add(a, c, alpha=s), x, kstar), tau_k)
        if accelerated:
            theta_k = 1.0 / math.sqrt(1.0 + 2.0 * epsilon * tau_k)
            tau_k, sigma_k = theta_k * tau_k, sigma_k / theta_k
        diff = _map(torch.sub, x_new, x)
        if compute_objective:  # K x^{k+1} is needed anyway: K xbar by linearity
            kx_new = [b.op(x_new) for b in blocks]
            kxbar = [torch.add(a, a - c, alpha=theta_k) for a, c in zip(kx_new, kx, strict=True)]
        else:  # one K application on xbar = x^{k+1} + theta (x^{k+1} - x^k)
            xbar = _map(lambda a, d, t=theta_k: torch.add(a, d, alpha=t), x_new, diff)
            kx_new = None
            kxbar = [b.op(xbar) for b in blocks]
        # Algorithm 1 residual; the norms of the new iterates are reused next iteration
        x_new_norm, v_new_norm = _pnorm(x_new), _dual_norm(v_new)
        dv = _dual_norm([a - c for a, c in zip(v_new, v, strict=True)])
        residual = _pnorm(diff) / x_norm.clamp(min=tiny) + dv / v_norm.clamp(min=tiny)
        x_norm, v_norm = x_new_norm, v_new_norm
        x, v, kx = x_new, v_new, kx_new
        if compute_objective:
            objective = sum(b.value(z) for b, z in zip(blocks, kx, strict=True)) + g_value(x)
        else:
            objective = None
        yield x, v, residual, objective


def pdhg(
    blocks: Sequence[DualBlock],
    x0: Primal,
    options: PDHGOptions | None = None,
    *,
    epsilon: float = 0.0,
    g_prox: Callable[[Primal, float], Primal] | None = None,
    g_value: Callable[[Primal], Tensor] | None = None,
    v0: Sequence[Tensor] | None = None,
    callback: Callable[[int, Primal], None] | None = None,
    return_dual: bool = False,
):
    """Algorithm 1: run PDHG on :math:`\\sum_jF_j(K_jx)+G(x)` from ``x0`` (warm start).

    ``blocks``: the terms :math:`F_j\\circ K_j`; ``options``: iterations, tolerance, step
    rule, history (:class:`PDHGOptions`; ``None``: the defaults). ``G`` defaults to
    :math:`\\tfrac\\varepsilon2\\|x\\|^2` (``epsilon``, the strong-convexity modulus of
    Eq. 1.3); pass ``g_prox(x, t)`` (:math:`\\operatorname{prox}_{tG}`) and ``g_value`` for
    another :math:`G` (``epsilon`` then declares its strong convexity modulus). ``v0``: dual
    warm start (default 0). ``callback(k, x)`` runs after every iteration. Returns
    ``(x, history)`` or, with ``return_dual=True``, ``(x, v, history)``; ``history.extra`` holds
    the step sizes of the rule.

    This is the generic solver; for the MRI problem of Eq. (1.3) callers choose the fused fast
    path :func:`~spinv.variational.solvers.fused_fourier_tv.fast_pdhg` (same arguments, same
    iterates to float rounding, falls back to this function where it does not apply).
    """
    options = PDHGOptions() if options is None else options
    if not isinstance(options, PDHGOptions):
        raise TypeError(f"options={options!r}: expected a PDHGOptions or None")
    iterations, check_every = options.iterations, options.check_every
    hist = History()
    steps = step_sizes(blocks, epsilon, options.step_rule, options.op_norm)
    hist.extra.update(steps)
    x = x0
    v = v0
    gen = pdhg_iterates(blocks, x0, options, epsilon=epsilon, g_prox=g_prox, g_value=g_value,
                        v0=v0)
    for k in range(iterations):
        x, v, res, obj = next(gen)
        check = (k + 1) % check_every == 0 or k + 1 == iterations
        if not check:
            hist.record(None, float("nan"))
            if callback is not None:
                callback(k, x)
            continue
        hist.record(obj, res)
        if callback is not None:
            callback(k, x)
        if bool((res <= options.tol).all()):
            hist.converged = True
            break
    if return_dual:
        return x, v, hist
    return x, hist
