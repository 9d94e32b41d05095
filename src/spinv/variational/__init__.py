"""Variational regularisation: regularisers, solvers and reconstruction recipes."""

from spinv.variational.differences import divergence, gradient, gradient_adjoint
from spinv.variational.rho import HuberRho, QuadraticRho, Rho, rho_gamma
from spinv.variational.wavelets import WaveletTransform

__all__ = [
    "gradient",
    "gradient_adjoint",
    "divergence",
    "Rho",
    "HuberRho",
    "QuadraticRho",
    "rho_gamma",
    "WaveletTransform",
]
