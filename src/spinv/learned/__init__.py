"""Learned iterative reconstruction (thesis ch. 2): learned proximal gradient (Algorithm 5) and
learned primal-dual, each with ordinary or roto-translation equivariant blocks."""

from spinv.learned.primal_dual import LearnedPrimalDual
from spinv.learned.proximal_gradient import LearnedProximalGradient

__all__ = ["LearnedPrimalDual", "LearnedProximalGradient"]
