"""Generative models for regularisation (talk 002, "Regularization with Generative Models").

Re-exports the VAE :class:`~spinv.nn.vae.GaussianVAE` (decoder :math:`z\\mapsto(G(z),\\Sigma(z))`)
and the structured covariances of :mod:`spinv.nn.covariance`.
"""

from spinv.nn.covariance import (
    CholeskyPrecision,
    Covariance,
    Diagonal,
    LowRankPlusDiagonal,
    ScaledIdentity,
    causal_offsets,
)
from spinv.nn.vae import COVARIANCE_KINDS, Decoder, Encoder, GaussianVAE

__all__ = [
    "COVARIANCE_KINDS",
    "CholeskyPrecision",
    "Covariance",
    "Decoder",
    "Diagonal",
    "Encoder",
    "GaussianVAE",
    "LowRankPlusDiagonal",
    "ScaledIdentity",
    "causal_offsets",
]
