"""Empirical (lower) estimates of a network's Lipschitz constant, to test certificates against.

Every estimate here is a value :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` or :math:`\\|Df(x)v\\|/\\|v\\|`
actually attained, hence a *lower* bound of the optimal Lipschitz constant; a certified upper
bound (e.g. :meth:`spinv.nn.nonexpansive.NonexpansiveDenoiser.certified_lipschitz`) must never
be below them.

- :func:`jacobian_power_iteration`: power iteration :math:`v\\leftarrow J^TJv/\\|J^TJv\\|` on the
  Jacobian at a point, with forward-mode (``jvp``) and reverse-mode (``vjp``) products.
- :func:`adversarial_lipschitz`: gradient ascent on
  :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` over pairs, from many random starts.
- :func:`random_pairs_lipschitz`: the ratio on random pairs.

>>> import torch
>>> f = lambda x: 0.5 * x
>>> round(jacobian_power_iteration(f, torch.ones(1, 1, 4, 4), seed=0), 6)
0.5
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jvp, vjp

from spinv.linalg import norm, power_iteration

__all__ = [
    "jacobian_power_iteration",
    "adversarial_lipschitz",
    "random_pairs_lipschitz",
    "certified_bound",
    "lipschitz_report",
]

Fn = Callable[[torch.Tensor], torch.Tensor]


def jacobian_power_iteration(f: Fn, x: torch.Tensor, iterations: int = 30, seed: int = 0) -> float:
    """Largest singular value of :math:`Df(x)` by power iteration (a lower bound of Lip f).

    :func:`spinv.linalg.power_iteration` per batch item (the Jacobian of a batched ``f`` is
    block diagonal) with :math:`v\\mapsto Df(x)v` (``jvp``) and its adjoint (``vjp``); returns
    the largest :math:`\\|Df(x)v\\|` over the unit iterates and the batch.
    """
    gen = torch.Generator().manual_seed(seed)
    x = x.detach()
    v = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    _, pullback = vjp(f, x)

    def forward(t: torch.Tensor) -> torch.Tensor:
        return jvp(f, (x,), (t,))[1].detach()

    def adjoint(t: torch.Tensor) -> torch.Tensor:
        return pullback(t)[0].detach()

    res = power_iteration(forward, v, adjoint=adjoint, iterations=max(int(iterations), 1),
                          per_item=True)
    return max(res.history)


def random_pairs_lipschitz(f: Fn, shape: tuple[int, ...], n: int = 64, scale: float = 1.0,
                           seed: int = 0, device=None) -> float:
    """Max of :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` over ``n`` random pairs of batched inputs."""
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    with torch.no_grad():
        for i in range(n):
            x = torch.rand(shape, generator=gen).to(device)
            d = torch.randn(shape, generator=gen).to(device) * (scale * 10.0 ** -(i % 4))
            best = max(best, float((norm(f(x + d) - f(x)) / norm(d)).max()))
    return best


def adversarial_lipschitz(f: Fn, shape: tuple[int, ...], starts: int = 8, steps: int = 50,
                          lr: float = 0.01, seed: int = 0, device=None) -> float:
    """Gradient ascent (Adam) on :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` over ``(x, y)``.

    ``starts`` random starting pairs (``y`` a small perturbation of ``x``), ``steps`` ascent
    steps each; returns the largest ratio seen at any step.
    """
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    for s in range(starts):
        x = torch.rand(shape, generator=gen).to(device).requires_grad_(True)
        d0 = torch.randn(shape, generator=gen).to(device) * (0.1 * 10.0 ** -(s % 3))
        y = (x.detach() + d0).requires_grad_(True)
        opt = torch.optim.Adam([x, y], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            ratio = norm(f(x) - f(y)) / norm(x - y).clamp_min(1e-12)
            best = max(best, float(ratio.detach().max()))
            (-ratio.sum()).backward()
            opt.step()
        with torch.no_grad():
            ratio = norm(f(x) - f(y)) / norm(x - y).clamp_min(1e-12)
            best = max(best, float(ratio.max()))
    return best


def certified_bound(model) -> tuple[float | None, str]:
    """``(bound, source)``: the model's own certificate if it has one, else ``(None, ...)``.

    Looks for ``certified_lipschitz()`` (nonexpansive denoisers) and
    ``lipschitz_upper_bound()`` (product-of-norms bound, e.g. DnCNN).
    """
    model = getattr(model, "module", model)
    for attr in ("certified_lipschitz", "lipschitz_upper_bound"):
        fn = getattr(model, attr, None)
        if callable(fn):
            return float(fn()), attr
    return None, "none"


def lipschitz_report(model, shape: tuple[int, ...], starts: int = 8, steps: int = 50,
                     jacobian_iterations: int = 30, pairs: int = 32, lr: float = 0.01,
                     seed: int = 0) -> dict:
    """Certified bound and empirical lower estimates of ``model`` on inputs of ``shape``.

    Returns a JSON-able dict with ``certified`` (or None), ``certificate_source``,
    ``jacobian_power`` (max over ``starts`` points), ``adversarial``, ``random_pairs``,
    ``empirical`` (their max) and ``holds`` (``empirical <= certified``, None if uncertified).
    """
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"shape={shape!r}: expected (B, C, H, W) with positive entries")
    if starts < 1 or steps < 0:
        raise ValueError(f"starts={starts}, steps={steps}: expected starts >= 1, steps >= 0")
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    cert, source = certified_bound(model)
    gen = torch.Generator().manual_seed(seed)
    jac = 0.0
    for s in range(starts):
        x = torch.rand((1, *shape[1:]), generator=gen).to(device)
        jac = max(jac, jacobian_power_iteration(model, x, jacobian_iterations, seed=seed + s))
    adv = adversarial_lipschitz(model, (1, *shape[1:]), starts, steps, lr, seed, device)
    rnd = random_pairs_lipschitz(model, shape, pairs, seed=seed, device=device)
    emp = max(jac, adv, rnd)
    param = sum(p.numel() for p in model.parameters())
    return {
        "certified": cert,
        "certificate_source": source,
        "certified_averagedness": (
            getattr(model, "certified_averagedness", lambda: None)()
        ),
        "jacobian_power": jac,
        "adversarial": adv,
        "random_pairs": rnd,
        "empirical": emp,
        "holds": None if cert is None else bool(emp <= cert),
        "shape": list(shape),
        "starts": starts,
        "steps": steps,
        "seed": seed,
        "parameters": param,
    }
