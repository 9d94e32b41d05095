r"""A small convolutional VAE whose Gaussian decoder returns a mean *and* a covariance.

The generative model of Duff et al. (talk 002, slides "Generative Regularizers" and "Modelling
the Covariance") is a map :math:`z\mapsto (G(z), \Sigma(z))` with :math:`z\sim\mathcal N(0,I)` and
:math:`u\mid z\sim\mathcal N(G(z),\Sigma(z))`. :class:`GaussianVAE` implements it with

* an encoder :math:`q(z\mid u) = \mathcal N(\mu_\phi(u), \mathrm{diag}\,\sigma^2_\phi(u))`
  (strided convolutions, then a linear layer),
* a mean decoder :math:`G_\theta` (linear layer to a :math:`4\times4` map, then
  upsample-and-convolve blocks),
* a covariance head: ``"identity"`` (:math:`\Sigma=\gamma I`, one learned scalar),
  ``"diagonal"``, ``"lowrank"`` (:math:`D+VV^\top`, rank ``rank``) or ``"precision"`` (banded
  Cholesky factor of the precision, window radius ``radius``); see :mod:`spinv.nn.covariance`.
  The non-identity heads are their own decoder CNNs of :math:`z`, so a covariance can be trained
  after (and on top of) a fixed mean model.

Training maximises the ELBO (:mod:`spinv.generative.train`).

>>> import torch
>>> vae = GaussianVAE(image_size=16, latent_dim=4, width=8, covariance="precision", radius=1)
>>> u = torch.rand(3, 1, 16, 16)
>>> mu, logvar = vae.encode(u)
>>> mu.shape, vae.decode_mean(mu).shape, vae.covariance(mu).logdet().shape
(torch.Size([3, 4]), torch.Size([3, 1, 16, 16]), torch.Size([3]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spinv.nn.covariance import (
    CholeskyPrecision,
    Covariance,
    Diagonal,
    LowRankPlusDiagonal,
    ScaledIdentity,
    causal_offsets,
)

__all__ = ["Encoder", "Decoder", "GaussianVAE", "COVARIANCE_KINDS"]

COVARIANCE_KINDS = ("identity", "diagonal", "lowrank", "precision")


def _levels(image_size: int) -> int:
    if not isinstance(image_size, int) or image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size={image_size!r}; expected a power of two >= 8 (e.g. 32, 64)")
    return int(math.log2(image_size)) - 2  # down to 4 x 4


class Encoder(nn.Module):
    """:math:`u\\mapsto(\\mu_\\phi(u), \\log\\sigma^2_\\phi(u))`, images ``(B,1,S,S)`` to
    ``(B,d)``."""

    def __init__(self, image_size: int, latent_dim: int, width: int = 16):
        super().__init__()
        levels = _levels(image_size)
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.SiLU()]
        ch = width
        for _ in range(levels):
            out = min(2 * ch, 8 * width)
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.SiLU()]
            ch = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(ch * 16, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.head(self.features(u))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)


class Decoder(nn.Module):
    """:math:`z\\mapsto` a ``(B, out_channels, S, S)`` map (linear, then upsample + conv)."""

    def __init__(self, image_size: int, latent_dim: int, out_channels: int, width: int = 16):
        super().__init__()
        levels = _levels(image_size)
        ch = width * min(2**levels, 8)
        self.ch0 = ch
        self.fc = nn.Linear(latent_dim, ch * 16)
        layers: list[nn.Module] = []
        for i in range(levels):
            out = width * min(2 ** (levels - 1 - i), 8)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch, out, 3, padding=1),
                nn.SiLU(),
            ]
            ch = out
        layers += [
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(ch, out_channels, 3, padding=1),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.silu(self.fc(z)).reshape(z.shape[0], self.ch0, 4, 4)
        return self.body(h)


def _soft_clamp(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Smoothly squash ``x`` into ``(low, high)`` (keeps log-variances in a sane range)."""
    mid, half = 0.5 * (low + high), 0.5 * (high - low)
    return mid + half * torch.tanh((x - mid) / half)


class GaussianVAE(nn.Module):
    """VAE with decoder :math:`z\\mapsto(G(z),\\Sigma(z))`; see the module docstring.

    Parameters: ``image_size`` (power of two), ``latent_dim``, ``width`` (base channel count),
    ``covariance`` in :data:`COVARIANCE_KINDS`, ``rank`` (for ``"lowrank"``), ``radius`` (for
    ``"precision"``), ``log_var_range`` (bounds of the pixel log-variances).
    """

    def __init__(
        self,
        image_size: int = 32,
        latent_dim: int = 32,
        width: int = 16,
        covariance: str = "identity",
        rank: int = 8,
        radius: int = 2,
        log_var_range: tuple[float, float] = (-12.0, 2.0),
    ):
        super().__init__()
        if covariance not in COVARIANCE_KINDS:
            raise ValueError(f"covariance={covariance!r}; expected one of {COVARIANCE_KINDS}")
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim={latent_dim!r}; expected an integer >= 1")
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank={rank!r}; expected an integer >= 1")
        self.config = dict(
            image_size=image_size,
            latent_dim=latent_dim,
            width=width,
            covariance=covariance,
            rank=rank,
            radius=radius,
            log_var_range=list(log_var_range),
        )
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.kind = covariance
        self.rank = rank
        self.radius = radius
        self.log_var_range = tuple(log_var_range)
        self.encoder = Encoder(image_size, latent_dim, width)
        self.decoder = Decoder(image_size, latent_dim, 1, width)
        # Sigma = gamma I; gamma ~ (0.1)^2 initially (also the fall-back of the other heads).
        self.log_gamma = nn.Parameter(torch.tensor(math.log(0.01)))
        channels = {
            "identity": 0,
            "diagonal": 1,
            "lowrank": 1 + rank,
            "precision": 1 + len(causal_offsets(radius)),
        }[covariance]
        self.cov_head = Decoder(image_size, latent_dim, channels, width) if channels else None
        if self.cov_head is not None:  # start (almost) at Sigma = gamma I
            last = self.cov_head.body[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            if covariance == "lowrank":
                # V = 0 is a stationary point of the likelihood (it depends on V only through
                # V V^T), so the factor channels start small but non-zero.
                with torch.no_grad():
                    last.weight[1:].normal_(0.0, 1e-3)

    # --------------------------------------------------------------------------------------
    def encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder mean and log-variance of :math:`q(z\\mid u)`, each ``(B, latent_dim)``."""
        self._check_images(u)
        return self.encoder(u)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image :math:`G(z)`, ``(B, 1, S, S)``."""
        return self.decoder(z)

    def covariance(self, z: torch.Tensor) -> Covariance:
        """The decoder covariance :math:`\\Sigma(z)` (a :class:`spinv.nn.covariance.Covariance`)."""
        B, S = z.shape[0], self.image_size
        shape = (B, 1, S, S)
        lg = self.log_gamma.to(z.dtype)
        if self.cov_head is None:
            return ScaledIdentity(lg, shape)
        h = self.cov_head(z)
        lo, hi = self.log_var_range
        base = h[:, :1] + lg
        if self.kind == "diagonal":
            return Diagonal(_soft_clamp(base, lo, hi))
        if self.kind == "lowrank":
            scale = torch.exp(0.5 * lg)  # factors in units of the base standard deviation
            return LowRankPlusDiagonal(_soft_clamp(base, lo, hi), scale * h[:, 1:])
        # precision: L_pp = exp(d_p) = 1/std_p, off-diagonal entries in the same units
        log_diag = -0.5 * _soft_clamp(base, lo, hi)
        return CholeskyPrecision(log_diag, torch.exp(-0.5 * lg) * h[:, 1:], self.radius)

    def reparametrise(
        self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """:math:`z = \\mu + \\sigma\\odot\\varepsilon` with
        :math:`\\varepsilon\\sim\\mathcal N(0,I)`."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device="cpu").to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, noise: bool = False):
        """``n`` images :math:`G(z)` (``noise=True``: :math:`G(z)+\\Sigma(z)^{1/2}\\varepsilon`)."""
        ref = self.log_gamma
        z = torch.randn((n, self.latent_dim), generator=generator).to(ref.device, ref.dtype)
        mean = self.decode_mean(z)
        return self.covariance(z).sample(mean, generator) if noise else mean

    def _check_images(self, u: torch.Tensor) -> None:
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch.Tensor, got {type(u).__name__}")
        S = self.image_size
        if u.dim() != 4 or tuple(u.shape[1:]) != (1, S, S):
            raise ValueError(f"u has shape {tuple(u.shape)}; expected (B, 1, {S}, {S})")
