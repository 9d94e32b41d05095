"""Baseline sampling patterns at a matched rate (thesis Sec. 1.3.6, Tables 1.2-1.4).

* uninformed patterns from :mod:`spinv.operators.sampling`: uniform random, variable density
  (Lustig et al. 2007), low-pass, Cartesian variable-density lines;
* :func:`knoll_density`: a data-adapted density from the mean training k-space power spectrum
  (Knoll et al. 2011): :math:`\\pi_i=\\min(1,c\\,(\\bar P*G_\\sigma)_i^{q})` with
  :math:`\\bar P=\\tfrac1N\\sum_b|y_b|^2`, a Gaussian smoothing :math:`G_\\sigma`, and :math:`c`
  bisected so that :math:`\\sum_i\\pi_i=K`; :math:`K` locations are then drawn with
  probabilities :math:`\\pi` (certain ones first);
* :func:`gozcu_greedy_lines`: the greedy line selection of Gozcu et al. (2018): starting from
  no line, add the candidate line that most decreases the training loss, until the rate is
  reached. With :math:`N` candidate lines and rate :math:`r` it needs
  :math:`\\sum_{i=0}^{rN-1}(N-i)=\\Theta(N^2)` lower-level solves (Sec. 1.3.6), which
  the result counts.

Every pattern is a centred float64 ``(H, W)`` tensor with values in {0, 1}.

>>> import torch
>>> pats = uninformed_patterns((16, 16), 0.25, seed=0)
>>> sorted(pats)
['low_pass', 'uniform_random', 'variable_density', 'variable_density_lines']
>>> [round(float(m.mean()), 3) for m in pats.values()]
[0.25, 0.25, 0.25, 0.25]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinv.bilevel.implicit import SolverOptions, solve_lower
from spinv.bilevel.lower_level import LowerLevel
from spinv.linalg import inner

__all__ = ["uninformed_patterns", "knoll_density", "gozcu_greedy_lines", "GreedyResult"]

_UNINFORMED = ("uniform_random", "variable_density", "low_pass", "variable_density_lines")


def uninformed_patterns(
    shape: tuple[int, int], rate: float, seed: int = 0, kinds=_UNINFORMED
) -> dict[str, torch.Tensor]:
    """Patterns of :mod:`spinv.operators.sampling` at ``rate`` (float64, centred)."""
    from spinv.operators import sampling

    out = {}
    for kind in kinds:
        if kind not in _UNINFORMED:
            raise ValueError(f"kind={kind!r}: expected one of {_UNINFORMED}")
        shp = (shape, shape) if isinstance(shape, int) else tuple(shape)
        out[kind] = getattr(sampling, kind)(shp, rate, seed=seed).to(torch.float64)
    return out


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x4 = x[None, None]
    x4 = torch.nn.functional.pad(x4, (radius, radius, radius, radius), mode="reflect")
    x4 = torch.nn.functional.conv2d(x4, k.reshape(1, 1, -1, 1))
    x4 = torch.nn.functional.conv2d(x4, k.reshape(1, 1, 1, -1))
    return x4[0, 0]


def knoll_density(
    kspace: torch.Tensor,
    rate: float,
    seed: int = 0,
    sigma: float = 1.0,
    exponent: float = 0.5,
) -> torch.Tensor:
    """Data-adapted random pattern from the training power spectrum (Knoll et al. 2011).

    ``kspace``: centred training k-space ``(N, 1, H, W)`` (complex). Returns a binary pattern
    with exactly :math:`K=\\mathrm{round}(\\text{rate}\\,HW)` samples.

    >>> import torch
    >>> k = torch.fft.fftshift(torch.fft.fft2(torch.rand(2, 1, 16, 16, dtype=torch.float64)))
    >>> m = knoll_density(k, 0.3, seed=0)
    >>> float(m.sum()), float(m[8, 8])
    (77.0, 1.0)
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate={rate!r}: expected a float in (0, 1]")
    power = (kspace.abs() ** 2).to(torch.float64).mean(dim=(0, 1))
    power = _gaussian_blur(power, sigma)
    h, w = power.shape
    count = max(1, round(rate * h * w))
    base = (power / power.max()).clamp_min(1e-300) ** exponent
    lo, hi = 0.0, 1.0
    while float(torch.clamp(hi * base, max=1).sum()) < count:
        hi *= 2
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float(torch.clamp(mid * base, max=1).sum()) < count:
            lo = mid
        else:
            hi = mid
    prob = torch.clamp(hi * base, max=1).reshape(-1)
    gen = torch.Generator().manual_seed(seed)
    certain = prob >= 1
    n_certain = min(int(certain.sum()), count)
    keys = torch.rand(prob.shape, generator=gen, dtype=torch.float64) ** (1 / prob.clamp_min(1e-12))
    keys = torch.where(certain, torch.full_like(keys, 2.0), keys)  # certain ones first
    idx = torch.argsort(keys, descending=True)[: max(count, n_certain)]
    mask = torch.zeros(h * w, dtype=torch.float64)
    mask[idx] = 1.0
    return mask.reshape(h, w)


@dataclass
class GreedyResult:
    """Selected ``pattern``, the chosen line indices in order, the training loss after each
    addition and the number of lower-level solves (training batch = one solve)."""

    pattern: torch.Tensor
    lines: list
    losses: list
    lower_level_solves: int


@torch.no_grad()
def gozcu_greedy_lines(
    ll: LowerLevel,
    alpha: float,
    rate: float,
    axis: int = 1,
    opts: SolverOptions | None = None,
    start: list | None = None,
    progress=None,
) -> GreedyResult:
    """Greedy Cartesian line selection of Gozcu et al. (2018) with a fixed ``alpha``.

    Candidates are the lines along ``axis`` (1: columns, as :mod:`spinv.operators.sampling`);
    the score is the training loss :math:`\\tfrac1N\\sum\\tfrac12\\|\\hat u_b-u_b^*\\|^2`; every
    candidate solve is warm-started from the current selection's solution. ``start`` lines are
    included from the beginning (not counted as solves). ``progress(step, line, loss)``
    is called after each addition.
    """
    if ll.u_true is None:
        raise ValueError("ll.u_true is None: the greedy selection needs ground truths")
    if axis not in (0, 1):
        raise ValueError(f"axis={axis!r}: expected 0 or 1")
    opts = opts or SolverOptions()
    h, w = ll.shape
    n_lines = (h, w)[axis]
    target = max(1, round(rate * n_lines))
    chosen = list(start or [])
    remaining = [i for i in range(n_lines) if i not in chosen]
    n = ll.y.shape[0]

    def mask_of(lines):
        m = torch.zeros(n_lines, dtype=torch.float64)
        if lines:
            m[torch.as_tensor(lines)] = 1.0
        return m[:, None].expand(h, w) if axis == 0 else m[None, :].expand(h, w)

    solves, losses = 0, []
    state = None
    while len(chosen) < target and remaining:
        best = (float("inf"), None, None)
        for cand in remaining:
            u, st, _ = solve_lower(ll, mask_of(chosen + [cand]), alpha, opts, state)
            solves += 1
            diff = u - ll.u_true
            loss = float(0.5 * inner(diff, diff).sum() / n)
            if loss < best[0]:
                best = (loss, cand, st)
        chosen.append(best[1])
        remaining.remove(best[1])
        losses.append(best[0])
        state = best[2]
        if progress is not None:
            progress(len(chosen), best[1], best[0])
    return GreedyResult(mask_of(chosen).clone(), chosen, losses, solves)


def gozcu_solve_count(n_candidates: int, rate: float) -> int:
    """Lower-level solves of the greedy method: :math:`\\sum_{i=0}^{rN-1}(N-i)` (Sec. 1.3.6)."""
    k = max(1, round(rate * n_candidates))
    return sum(n_candidates - i for i in range(k))
