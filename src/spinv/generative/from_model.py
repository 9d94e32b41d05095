r"""Generative regularisers from a trained VAE run: ``spinv reconstruct --method generative``.

For MRI measurements :math:`y = SFu + \eta` with noise level :math:`\sigma` and a trained
:class:`spinv.nn.vae.GaussianVAE` (a run directory or a zoo name), the reconstruction is
(talk 002, slides "Generative Regularizers", "Modelling the Covariance", "Example: MRI")

.. math:: \hat u = \arg\min_u \min_z\ \frac1{2\sigma^2}\|Au-y\|_2^2 + \alpha\,E(u, z),

with the joint energy :math:`E` of the chosen ``prior``
(:mod:`spinv.generative.regularisers`):

``"mean"`` (Duff et al., JMIV 2023)
    :math:`E = \tfrac12\|u-G(z)\|^2 + \tfrac12\|z\|^2`;
``"covariance"`` (Duff et al., PMB 2023)
    :math:`E = \log\det\Sigma(z) + \tfrac12\|u-G(z)\|^2_{\Sigma(z)^{-1}} + \tfrac12\|z\|^2`,
    with the VAE's own covariance head (the zoo VAE: banded Cholesky precision);
``"range"`` (Bora et al. 2017)
    :math:`u = G(z)`, :math:`\min_z \tfrac1{2\sigma^2}\|AG(z)-y\|^2 + \tfrac\alpha2\|z\|^2`.

It is minimised as in the generative experiment (:mod:`spinv.experiments.generative`, schedule
of ``configs/generative-small.yaml``: :data:`DEFAULT_OPTIONS`, alternating Adam steps on
:math:`z` with the exact k-space :math:`u`-step, two latent starts, the encoder mean of the
zero-filled image and :math:`z = 0`). :math:`\alpha` is given, or tuned (:func:`tune_prior_weight`)
on the grid :data:`WEIGHT_GRIDS`: the value with the best mean PSNR on four bundled *validation*
slices (never test), resized to the measurements' size and simulated with their problem. The
variational methods tune on training images; a learned prior has seen those, which would favour
a too large :math:`\alpha`, so the prior tunes on the validation slab the experiment tunes on.

The VAE's image size must equal the measurements' (:func:`check_prior_model`), and the data
term needs :math:`\sigma` (known from spinv's own measurement files, else ``--noise``).
"""

from __future__ import annotations

import numpy as np
import torch

from spinv.generative.reconstruct import GenerativeOptions, reconstruct_generative
from spinv.generative.regularisers import REGULARISER_KINDS, make_regulariser

__all__ = ["DEFAULT_OPTIONS", "PRIORS", "WEIGHT_GRIDS", "GenerativeReconstructor",
           "check_prior_model", "measure_prior", "tune_prior_weight"]

PRIORS = REGULARISER_KINDS
#: minimisation schedule of ``configs/generative-small.yaml`` (``recon:``)
DEFAULT_OPTIONS = GenerativeOptions(method="alternating", iterations=15, z_steps=5, z_lr=0.05,
                                    n_inits=2, cg_iterations=20, seed=0)
#: :math:`\alpha` grids (those of ``configs/generative-small.yaml`` ``tuning:``, one decade wider)
WEIGHT_GRIDS = {"mean": (1.0, 3.0, 10.0, 30.0, 100.0),
                "covariance": (0.01, 0.03, 0.1, 0.3, 1.0),
                "range": (0.1, 1.0, 10.0)}
TUNING = {"mri": ("brain-t1", "val")}
VAE_NAME = "gaussian-vae"


class GenerativeReconstructor(torch.nn.Module):
    """:math:`y\\mapsto\\hat u` of the module docstring for one ``vae``, ``operator``,
    ``prior``, weight ``alpha`` and noise level ``noise_std`` (a module, so that
    :func:`spinv.training.evaluate.evaluate_model` can measure it like a learned model)."""

    def __init__(self, vae: torch.nn.Module, operator, prior: str, alpha: float,
                 noise_std: float, options: GenerativeOptions = DEFAULT_OPTIONS) -> None:
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"--prior {prior!r}: expected one of {', '.join(PRIORS)}")
        self.vae = vae.eval()
        for p in self.vae.parameters():
            p.requires_grad_(False)
        self.operator = operator
        self.regulariser = make_regulariser(prior, self.vae)
        self.alpha, self.noise_std, self.options = float(alpha), float(noise_std), options

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return reconstruct_generative(self.operator, y, self.regulariser, lam=self.alpha,
                                          noise_std=self.noise_std, options=self.options).u


def check_prior_model(network: torch.nn.Module, name: str, source: str, problem,
                      noise_known: bool) -> None:
    """Refuse what ``--method generative`` cannot use: a model that is not a VAE, non-MRI
    measurements, an unknown noise level, or a VAE whose image size is not the measurements'."""
    if name != VAE_NAME:
        raise ValueError(f"--model {source!r} is a {name!r} model; --method generative needs a "
                         "VAE prior (`spinv models list`: vae-brain32)")
    if problem.kind != "mri":
        raise ValueError(f"--method generative reconstructs MRI k-space (its u-step is diagonal "
                         f"in k-space); the measurements are {problem.kind} data: use tv or a "
                         "learned model")
    if not noise_known or not problem.noise.sigma > 0:
        raise ValueError("--method generative needs the noise level sigma of the measurements "
                         "(the data term is ||Au-y||^2/(2 sigma^2)): pass --noise SIGMA")
    size, shape = int(network.image_size), tuple(problem.image_shape)
    if shape != (size, size):
        raise ValueError(f"--model {source!r} is a VAE of {size}x{size} images, the "
                         f"measurements are {shape[0]}x{shape[1]} images; pass --size {size} "
                         f"(with --input), or train a VAE of {shape[0]}x{shape[1]} images "
                         "(configs/zoo/vae-*.yaml, problem.image_size)")


def _tuning_images(problem, n_images: int) -> torch.Tensor:
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices

    dataset, split = TUNING[problem.kind]
    pool = load_dataset(dataset, split)
    idx = np.linspace(0, len(pool) - 1, n_images).round().astype(int)
    return prepare_slices(pool[idx], problem.image_shape[0])


def tune_prior_weight(vae: torch.nn.Module, problem, prior: str,
                      options: GenerativeOptions = DEFAULT_OPTIONS, seed: int = 0,
                      n_images: int = 4) -> tuple[float, dict[str, float]]:
    """``(alpha, {alpha: mean PSNR})``: the weight of :data:`WEIGHT_GRIDS` with the best mean
    PSNR on ``n_images`` bundled validation slices simulated with ``problem`` (noise seed
    ``seed + 1``); never the user's data."""
    from spinv.metrics import psnr

    x = _tuning_images(problem, n_images)
    y = problem.simulate(x, seed=seed + 1)
    scores = {}
    for alpha in WEIGHT_GRIDS[prior]:
        rec = GenerativeReconstructor(vae, problem.operator, prior, alpha, problem.noise.sigma,
                                      options)
        scores[f"{alpha:g}"] = float(psnr(rec(y), x, data_range=1.0).mean())
    best = max(scores, key=scores.get)
    return float(best), scores


def measure_prior(vae: torch.nn.Module, cfg, split: str = "test",
                  prior: str = "covariance") -> dict:
    """Held-out figure of a VAE for the zoo (:func:`spinv.zoo.measure`): PSNR/SSIM of the
    ``prior`` reconstruction (weight tuned by :func:`tune_prior_weight`) against the
    zero-filled baseline on ``split`` of the config's dataset, at the config's MRI problem,
    foreground ROI, evaluation seed 1234 (:func:`spinv.training.evaluate.evaluate_model`)."""
    from spinv.problems import Problem
    from spinv.training.evaluate import evaluate_model

    problem = Problem.from_config(cfg.problem)
    check_prior_model(vae, VAE_NAME, cfg.name, problem, True)
    alpha, scores = tune_prior_weight(vae, problem, prior)
    rec = GenerativeReconstructor(vae, problem.operator, prior, alpha, problem.noise.sigma)
    metrics, _ = evaluate_model(rec, cfg, cfg.data.dataset, split=split, roi=True, seed=1234,
                                batch_size=cfg.eval.batch_size)
    metrics["generative"] = {"prior": prior, "alpha": alpha, "tuning_psnr": scores,
                             "tuning": "4 brain-t1 validation slices",
                             "baseline": "zero-filled"}
    return metrics
