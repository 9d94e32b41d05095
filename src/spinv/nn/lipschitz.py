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

__all__ = ["jacobian_power_iteration", "adversarial_lipschitz", "random_pairs_lipschitz"]

Fn = Callable[[torch.Tensor], torch.Tensor]


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


def jacobian_power_iteration(f: Fn, x: torch.Tensor, iterations: int = 30, seed: int = 0) -> float:
    """Largest singular value of :math:`Df(x)` by power iteration (a lower bound of Lip f).

    Returns the largest :math:`\\|Df(x)v\\|` over the unit iterates, maximised over the batch.
    """
    gen = torch.Generator().manual_seed(seed)
    x = x.detach()
    v = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    best = 0.0
    for _ in range(max(int(iterations), 1)):
        v = v / _norms(v).clamp_min(1e-30).view(-1, *([1] * (x.ndim - 1)))
        _, jv = jvp(f, (x,), (v,))
        best = max(best, float(_norms(jv.detach()).max()))
        _, pullback = vjp(f, x)
        (v,) = pullback(jv)
        if float(v.abs().max()) == 0.0:
            break
    return best


def random_pairs_lipschitz(f: Fn, shape: tuple[int, ...], n: int = 64, scale: float = 1.0,
                           seed: int = 0, device=None) -> float:
    """Max of :math:`\\|f(x)-f(y)\\|/\\|x-y\\|` over ``n`` random pairs of batched inputs."""
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    with torch.no_grad():
        for i in range(n):
            x = torch.rand(shape, generator=gen).to(device)
            d = torch.randn(shape, generator=gen).to(device) * (scale * 10.0 ** -(i % 4))
            best = max(best, float((_norms(f(x + d) - f(x)) / _norms(d)).max()))
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
            ratio = _norms(f(x) - f(y)) / _norms(x - y).clamp_min(1e-12)
            best = max(best, float(ratio.detach().max()))
            (-ratio.sum()).backward()
            opt.step()
        with torch.no_grad():
            ratio = _norms(f(x) - f(y)) / _norms(x - y).clamp_min(1e-12)
            best = max(best, float(ratio.max()))
    return best
