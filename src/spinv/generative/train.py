r"""ELBO training of :class:`spinv.nn.vae.GaussianVAE` on image slices (e.g. ``"brain-t1"``).

For an image :math:`u` the VAE maximises the evidence lower bound (talk 002, slide "Modelling
the Covariance": :math:`u\mid z\sim\mathcal N(G(z),\Sigma(z))`, :math:`z\sim\mathcal N(0,I)`)

.. math:: \mathrm{ELBO}(u) = \mathbb E_{q(z\mid u)}\Big[-\tfrac12\|u-G(z)\|^2_{\Sigma(z)^{-1}}
          - \tfrac12\log\det\Sigma(z)\Big]
          - \beta\,\mathrm{KL}\big(q(z\mid u)\,\|\,\mathcal N(0,I)\big)
          - \tfrac n2\log 2\pi,

with :math:`\mathrm{KL} = \tfrac12\sum_j(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2)` and one
reparametrised sample :math:`z=\mu+\sigma\odot\varepsilon`. Training runs in stages
(:class:`TrainSettings` ``stage``):

``"mean"``
    encoder, mean decoder and the scalar :math:`\gamma` of :math:`\Sigma=\gamma I`;
``"covariance"``
    only the covariance head, with the encoder and mean frozen (the KL term is then constant) --
    a stable way to fit :math:`\Sigma(z)` on top of a trained mean;
``"joint"``
    every parameter, full ELBO with the model's own :math:`\Sigma(z)`.

:func:`spinv.training.vae.train_generative_models` does the whole recipe on the training engine:
one mean model, then one covariance head per requested kind, each in its run directory
(:func:`spinv.training.vae.load_vae` rebuilds a model from it).

Data augmentation (:class:`SliceSampler`): random zooms (in or out, scale in ``zoom``), small
shifts and horizontal flips of the slices, resampled to ``image_size`` by an affine grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from spinv.nn.covariance import ScaledIdentity
from spinv.nn.vae import GaussianVAE

__all__ = [
    "TrainSettings",
    "SliceSampler",
    "prepare_slices",
    "elbo_terms",
    "STAGES",
]

STAGES = ("mean", "covariance", "joint")


@dataclass
class TrainSettings:
    """Optimisation settings of one training stage (see the module docstring)."""

    stage: str = "mean"
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r}; expected one of {STAGES}")
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r}; expected an integer >= 1")
        for name in ("lr", "beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (
                name == "lr" and v == 0
            ):
                raise ValueError(f"{name}={v!r}; expected a finite number > 0")


def prepare_slices(images, size: int) -> torch.Tensor:
    """``(N, H, W)`` array in [0, 1] -> float32 ``(N, 1, size, size)`` by area averaging (the
    whole slice, no crop: the evaluation images)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.dim() != 3:
        raise ValueError(f"images has shape {tuple(x.shape)}; expected (N, H, W)")
    return F.interpolate(x.unsqueeze(1), size=(size, size), mode="area")


class SliceSampler:
    """Random augmented mini-batches ``(B, 1, S, S)`` from slices ``(N, H, W)``.

    Each draw picks a slice, a scale :math:`s\\in` ``zoom`` (the side of the sampled field of
    view relative to the slice: below 1 zooms in, above 1 zooms out with zero padding), a shift
    of at most :math:`|1-s|` (half-widths) and (``flip``) a horizontal flip, and resamples the
    slice (pre-smoothed to ``2 S``) bilinearly onto the ``S x S`` grid. Optional (issue 14.5,
    priors that generalise): ``rotate`` turns the sampled field of view by an angle uniform in
    :math:`[-\\mathrm{rotate}, \\mathrm{rotate}]` degrees, and ``intensity`` ``(low, high)``
    multiplies each slice by a factor uniform in that range. Both draw from the generator only
    when enabled, so samplers without them repeat the draws of earlier versions exactly.

    >>> import torch
    >>> s = SliceSampler(torch.rand(5, 64, 64).numpy(), size=16)
    >>> s.sample(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 1, 16, 16])
    """

    def __init__(self, images, size: int, zoom=(0.8, 1.0), flip: bool = True,
                 rotate: float = 0.0, intensity=(1.0, 1.0)):
        lo, hi = float(zoom[0]), float(zoom[1])
        if not 0 < lo <= hi <= 2:
            raise ValueError(f"zoom={tuple(zoom)!r}; expected 0 < low <= high <= 2")
        if not 0 <= float(rotate) <= 180:
            raise ValueError(f"rotate={rotate!r}; expected an angle in [0, 180] degrees")
        if not 0 < float(intensity[0]) <= float(intensity[1]):
            raise ValueError(f"intensity={tuple(intensity)!r}; expected 0 < low <= high")
        self.size = int(size)
        self.zoom = (lo, hi)
        self.flip = bool(flip)
        self.rotate = float(rotate)
        self.intensity = (float(intensity[0]), float(intensity[1]))
        self.hr = prepare_slices(images, 2 * self.size)

    def to(self, device) -> SliceSampler:
        self.hr = self.hr.to(device)
        return self

    def sample(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = self.hr.shape[0]
        idx = torch.randint(n, (batch,), generator=generator)
        u = torch.rand(batch, 4, generator=generator)
        scale = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * u[:, 0]
        tx = (1 - scale) * (2 * u[:, 1] - 1)
        ty = (1 - scale) * (2 * u[:, 2] - 1)
        sx = torch.where((u[:, 3] < 0.5) & self.flip, -scale, scale)
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = sx, scale
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        if self.rotate > 0:  # rotate the sampled field of view: theta[:, :, :2] = R diag(sx, s)
            phi = torch.deg2rad(self.rotate * (2 * torch.rand(batch, generator=generator) - 1))
            c, si = torch.cos(phi), torch.sin(phi)
            theta[:, 0, 0], theta[:, 0, 1] = c * sx, -si * scale
            theta[:, 1, 0], theta[:, 1, 1] = si * sx, c * scale
        src = self.hr[idx.to(self.hr.device)]
        grid = F.affine_grid(theta.to(src), (batch, 1, self.size, self.size), align_corners=False)
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.intensity != (1.0, 1.0):
            lo, hi = self.intensity
            gain = lo + (hi - lo) * torch.rand(batch, generator=generator)
            out = out * gain.to(out).reshape(batch, 1, 1, 1)
        return out


def elbo_terms(
    model: GaussianVAE,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    stage: str = "joint",
    beta: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Batch means of ``nll`` (:math:`-\\log p(x\\mid z)`), ``kl``, ``loss`` = nll + beta kl, and
    ``nll_per_pixel``. ``stage="mean"`` uses :math:`\\Sigma=\\gamma I` whatever the head."""
    mu, logvar = model.encode(x)
    z = model.reparametrise(mu, logvar, generator)
    mean = model.decode_mean(z)
    if stage == "mean":
        cov = ScaledIdentity(model.log_gamma, tuple(mean.shape))
    else:
        cov = model.covariance(z)
    nll = cov.nll(x - mean).mean()
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()
    loss = nll + beta * kl if stage != "covariance" else nll
    return {"loss": loss, "nll": nll, "kl": kl, "nll_per_pixel": nll / x[0].numel()}
