"""Variational regularisation: regularisers, solvers and reconstruction recipes."""

from spinv.variational.differences import divergence, gradient, gradient_adjoint

__all__ = ["gradient", "gradient_adjoint", "divergence"]
