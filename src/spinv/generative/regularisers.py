r"""Generative regularisers :math:`R(u) = \inf_z E(u, z)` (talk 002, Duff et al.).

Given a generative model :math:`z\mapsto(G(z),\Sigma(z))` (e.g. :class:`spinv.nn.vae.GaussianVAE`),
talk 002 defines, on the slides "Generative Regularizers" and "Modelling the Covariance",

* **mean only** (Duff et al., JMIV 2023), with :math:`S(z)=\tfrac12\|z\|^2`:

  .. math:: R(u) = \inf_z\ \tfrac12\|u - G(z)\|_2^2 + \tfrac12\|z\|_2^2,

* **covariance** (Duff et al., PMB 2023, after Dorta et al. 2018):

  .. math:: R(u) = \inf_z\ \beta\log\det\Sigma(z) + \tfrac12\|u - G(z)\|^2_{\Sigma(z)^{-1}}
            + \tfrac12\|z\|_2^2,

  where the slide has :math:`\beta=1`; :math:`\beta=\tfrac12` makes :math:`E` the negative
  log-density of :math:`u\mid z\sim\mathcal N(G(z),\Sigma(z))`, :math:`z\sim\mathcal N(0,I)` up to
  a constant (parameter ``logdet_weight``),

* the **range constraint** of Bora et al. (2017): :math:`R(u) = \inf_z \iota_{\{0\}}(u - G(z))`
  (plus, as in Bora et al., an optional :math:`\tfrac{w}{2}\|z\|^2` on the latent), i.e. the
  reconstruction is searched in the range of :math:`G` only.

Each regulariser exposes the joint energy :math:`E(u,z)` (per image, shape ``(B,)``), the
Gaussian prior :math:`(G(z),\Sigma(z))` the :math:`u`-step needs,
:meth:`~GenerativeRegulariser.value`
(the infimum over :math:`z` by L-BFGS, for evaluation and tests) and, by Danskin's theorem,
:math:`\nabla R(u) = \nabla_u E(u, z^*(u)) = \Sigma(z^*)^{-1}(u - G(z^*))`.

:class:`LinearGaussianGenerator` (:math:`G(z)=Wz+b`, fixed :math:`\Sigma`) has the closed form
:math:`R(u) = \tfrac12 (u-b)^\top(\Sigma+WW^\top)^{-1}(u-b)+\text{const}` and serves as a reference.

>>> import torch
>>> gen = LinearGaussianGenerator.random(image_size=4, latent_dim=3, seed=0)
>>> reg = MeanOnlyRegulariser(gen)
>>> u = torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
>>> value, z = reg.value(u)
>>> bool(torch.allclose(value, gen.closed_form_mean_only(u), atol=1e-8))
True
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

from spinv.linalg import squared_norm
from spinv.nn.covariance import Covariance, ScaledIdentity
from spinv.variational.regularisers import RegulariserBase

__all__ = [
    "GenerativeModel",
    "GenerativeRegulariser",
    "MeanOnlyRegulariser",
    "CovarianceRegulariser",
    "RangeConstraint",
    "LinearGaussianGenerator",
    "make_regulariser",
    "REGULARISER_KINDS",
]

REGULARISER_KINDS = ("mean", "covariance", "range")


@runtime_checkable
class GenerativeModel(Protocol):
    """What a regulariser needs from a model (:class:`spinv.nn.vae.GaussianVAE` has it)."""

    latent_dim: int

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor: ...

    def covariance(self, z: torch.Tensor) -> Covariance: ...


def _check_pair(u: torch.Tensor, z: torch.Tensor, latent_dim: int) -> None:
    for name, t in (("u", u), ("z", z)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if u.dim() != 4 or u.shape[1] != 1 or u.is_complex():
        raise ValueError(f"u has shape {tuple(u.shape)}, dtype {u.dtype}; expected real (B,1,H,W)")
    if z.dim() != 2 or z.shape != (u.shape[0], latent_dim):
        raise ValueError(f"z has shape {tuple(z.shape)}; expected ({u.shape[0]}, {latent_dim})")


class GenerativeRegulariser(RegulariserBase):
    """Base class: :math:`R(u)=\\inf_z E(u,z)` for a generative ``model`` (the generative
    family of :class:`spinv.variational.regularisers.RegulariserBase`; ``reg(u)`` is the
    local infimum of :meth:`value`).

    Attributes: ``model``, ``kind`` (one of :data:`REGULARISER_KINDS`), ``hard``
    (``True`` for the range constraint, where :math:`u=G(z)` is imposed).
    """

    kind = "mean"
    hard = False

    def __init__(self, model: GenerativeModel):
        if not isinstance(model, GenerativeModel):
            raise TypeError(
                f"model must provide latent_dim, decode_mean(z) and covariance(z); got "
                f"{type(model).__name__}"
            )
        self.model = model

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    def energy(self, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """:math:`E(u, z)` per image, shape ``(B,)``."""
        raise NotImplementedError

    def latent_energy(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\tfrac12\\|z\\|^2` per image."""
        return 0.5 * z.pow(2).sum(dim=1)

    def prior(self, z: torch.Tensor) -> tuple[torch.Tensor, Covariance]:
        """The Gaussian :math:`(G(z), \\Sigma(z))` seen by the :math:`u`-step:
        :math:`E(\\cdot,z)` is :math:`\\tfrac12\\|u-G(z)\\|^2_{\\Sigma^{-1}}` plus terms free of
        u."""
        mean = self.model.decode_mean(z)
        return mean, ScaledIdentity(mean.new_zeros(()), tuple(mean.shape))

    def gradient_u(self, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\nabla_u E(u,z) = \\Sigma(z)^{-1}(u - G(z))` (equal to :math:`\\nabla R(u)` at
        :math:`z = z^*(u)` by Danskin's theorem)."""
        mean, cov = self.prior(z)
        return cov.apply_precision(u - mean)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`R(u)` per image (:meth:`value` from :math:`z=0`)."""
        return self.value(u)[0]

    def value(
        self,
        u: torch.Tensor,
        z0: torch.Tensor | None = None,
        iterations: int = 200,
        tol: float = 1e-10,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`(R(u), z^*)` by L-BFGS over :math:`z` from ``z0`` (default: zeros), per image.

        :math:`E` is non-convex in :math:`z` for a non-linear :math:`G`, so this is a local
        infimum; start from several ``z0`` (e.g. the encoder mean) and keep the best.
        """
        if self.hard:
            raise ValueError("value() is not defined for the range constraint (it is 0 or +inf)")
        u = u.detach()
        z0 = u.new_zeros(u.shape[0], self.latent_dim) if z0 is None else z0.detach()
        _check_pair(u, z0, self.latent_dim)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [z], lr=1.0, max_iter=iterations, tolerance_grad=tol, tolerance_change=tol * 1e-2,
            history_size=20, line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            loss = self.energy(u, z).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return self.energy(u, z), z.detach()


class MeanOnlyRegulariser(GenerativeRegulariser):
    """:math:`E(u,z)=\\tfrac12\\|u-G(z)\\|^2+\\tfrac12\\|z\\|^2` (slide "Generative
    Regularizers"); the covariance of the model is ignored (:math:`\\Sigma = I`)."""

    kind = "mean"

    def energy(self, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        _check_pair(u, z, self.latent_dim)
        return 0.5 * squared_norm(u - self.model.decode_mean(z)) + self.latent_energy(z)


class CovarianceRegulariser(GenerativeRegulariser):
    """:math:`E(u,z)=\\beta\\log\\det\\Sigma(z)+\\tfrac12\\|u-G(z)\\|^2_{\\Sigma(z)^{-1}}+\\tfrac12\\|z\\|^2`
    (slide "Modelling the Covariance"; ``logdet_weight`` :math:`=\\beta`, 1 on the slide)."""

    kind = "covariance"

    def __init__(self, model: GenerativeModel, logdet_weight: float = 1.0):
        super().__init__(model)
        if not isinstance(logdet_weight, (int, float)) or not math.isfinite(logdet_weight) or (
            logdet_weight < 0
        ):
            raise ValueError(f"logdet_weight={logdet_weight!r}; expected a finite number >= 0")
        self.logdet_weight = float(logdet_weight)

    def prior(self, z: torch.Tensor) -> tuple[torch.Tensor, Covariance]:
        return self.model.decode_mean(z), self.model.covariance(z)

    def energy(self, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        _check_pair(u, z, self.latent_dim)
        mean, cov = self.prior(z)
        return (
            self.logdet_weight * cov.logdet()
            + 0.5 * cov.mahalanobis(u - mean)
            + self.latent_energy(z)
        )


class RangeConstraint(GenerativeRegulariser):
    """Bora et al. (2017): :math:`u = G(z)` exactly, with the latent penalty
    :math:`\\tfrac{w}{2}\\|z\\|^2` (``latent_weight`` :math:`=w`, 0 for the pure constraint).

    :meth:`energy` returns the latent penalty and ignores ``u`` (the constraint is imposed by
    the solver, which optimises over :math:`z` with :math:`u = G(z)`).
    """

    kind = "range"
    hard = True

    def __init__(self, model: GenerativeModel, latent_weight: float = 1.0):
        super().__init__(model)
        if not isinstance(latent_weight, (int, float)) or latent_weight < 0:
            raise ValueError(f"latent_weight={latent_weight!r}; expected a number >= 0")
        self.latent_weight = float(latent_weight)

    def energy(self, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.latent_weight * self.latent_energy(z)


def make_regulariser(kind: str, model: GenerativeModel, **options) -> GenerativeRegulariser:
    """``"mean"`` | ``"covariance"`` | ``"range"`` -> the matching regulariser."""
    table = {
        "mean": MeanOnlyRegulariser,
        "covariance": CovarianceRegulariser,
        "range": RangeConstraint,
    }
    if kind not in table:
        raise ValueError(f"kind={kind!r}; expected one of {REGULARISER_KINDS}")
    return table[kind](model, **options)


class LinearGaussianGenerator(torch.nn.Module):
    """Reference model :math:`G(z) = Wz + b` with a fixed dense covariance :math:`\\Sigma`
    (``cov``, ``None`` for :math:`I`): the regularisers then have closed forms."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, image_size: int, cov=None):
        super().__init__()
        n = image_size * image_size
        if weight.dim() != 2 or weight.shape[0] != n:
            raise ValueError(f"weight has shape {tuple(weight.shape)}; expected ({n}, d)")
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias.reshape(n))
        self.image_size = image_size
        self.latent_dim = weight.shape[1]
        self.cov = cov  # a Covariance with batch size 1, or None

    @classmethod
    def random(
        cls, image_size: int, latent_dim: int, seed: int = 0, dtype=torch.float64, cov=None
    ) -> LinearGaussianGenerator:
        g = torch.Generator().manual_seed(seed)
        n = image_size * image_size
        w = torch.randn(n, latent_dim, generator=g, dtype=dtype) / math.sqrt(n)
        b = 0.5 + 0.1 * torch.randn(n, generator=g, dtype=dtype)
        return cls(w, b, image_size, cov)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        S = self.image_size
        return (z @ self.weight.T + self.bias).reshape(z.shape[0], 1, S, S)

    def covariance(self, z: torch.Tensor) -> Covariance:
        S = self.image_size
        if self.cov is None:
            return ScaledIdentity(z.new_zeros(()), (z.shape[0], 1, S, S))
        return self.cov

    def encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean :math:`(I+W^\\top W)^{-1}W^\\top(u-b)` of the mean-only model."""
        W = self.weight
        r = u.reshape(u.shape[0], -1) - self.bias
        M = torch.eye(self.latent_dim, dtype=W.dtype, device=W.device) + W.T @ W
        z = torch.linalg.solve(M, (r @ W).T).T
        return z, torch.zeros_like(z)

    def closed_form_mean_only(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`\\tfrac12(u-b)^\\top(I+WW^\\top)^{-1}(u-b)` per image."""
        n = self.bias.numel()
        r = u.reshape(u.shape[0], -1) - self.bias
        M = torch.eye(n, dtype=r.dtype) + self.weight @ self.weight.T
        return 0.5 * (r * torch.linalg.solve(M, r.T).T).sum(dim=1)

    def closed_form_covariance(self, u: torch.Tensor, logdet_weight: float) -> torch.Tensor:
        """:math:`\\beta\\log\\det\\Sigma + \\tfrac12(u-b)^\\top(\\Sigma+WW^\\top)^{-1}(u-b)`."""
        S = self.image_size
        cov = self.covariance(u.new_zeros(1, self.latent_dim))
        Sig = cov.dense()[0] if self.cov is not None else torch.eye(S * S, dtype=u.dtype)
        r = u.reshape(u.shape[0], -1) - self.bias
        M = Sig + self.weight @ self.weight.T
        quad = 0.5 * (r * torch.linalg.solve(M, r.T).T).sum(dim=1)
        return logdet_weight * torch.linalg.slogdet(Sig)[1] + quad
