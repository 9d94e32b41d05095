"""Reconstruct measurements with any spinv method: one entry point for every family.

* **analytic**: FBP (CT), zero filling :math:`F^{-1}S^*y` (MRI), root-sum-of-squares ``rss``
  (multi-coil MRI, :class:`~spinv.operators.mri_multicoil.MultiCoilFourier`), the data
  (denoising);
* **variational** (thesis Eq. (1.3), solved by PDHG, Algorithm 1): ``tv``, ``tv-smooth``,
  ``tgv``, ``wavelet``, ``h1``, ``dtv``, with :math:`\\alpha` given or tuned (maximal mean PSNR on
  four bundled *training* images of the modality simulated with the same problem);
* **learned** end-to-end models trained by :mod:`spinv.training`: ``lpg`` (learned proximal
  gradient, Algorithm 5), ``lpd`` (learned primal-dual), ``postprocess-cnn``;
* **plug-and-play** with a trained denoiser: ``pnp-pgd`` (Algorithm 6,
  :math:`u \\leftarrow \\Phi_\\lambda(u - \\tau A^*(Au-y))`, :math:`\\tau = c/\\|A\\|^2`) and
  ``pnp-admm`` (penalty :math:`\\rho = r\\|A\\|^2`), where
  :math:`\\Phi_\\lambda = (1-\\lambda)\\,\\mathrm{id} + \\lambda\\Phi` is the relaxed denoiser of
  :class:`spinv.learned.pnp.RelaxedDenoiser`, started from the analytic reconstruction;
* **generative** regularisers from a trained VAE (talk 002, Duff et al. 2023; Bora et al. 2017):
  ``generative`` with ``prior`` ``mean`` | ``covariance`` | ``range``, i.e.
  :math:`\\min_u\\min_z \\tfrac1{2\\sigma^2}\\|Au-y\\|^2 + \\alpha E(u,z)` with
  :math:`E=\\tfrac12\\|u-G(z)\\|^2_{\\Sigma^{-1}}+\\log\\det\\Sigma(z)+\\tfrac12\\|z\\|^2`
  (mean: :math:`\\Sigma=I`, no log-det; range: :math:`u=G(z)`), MRI only, :math:`\\alpha` given
  or tuned on bundled validation slices (:mod:`spinv.generative.from_model`).

A trained model (a run directory or a name of :mod:`spinv.zoo`) is applied only to
measurements of the problem it was trained for: :func:`check_model_problem` compares the two
problems field by field (size, views, detectors, mask, noise) and refuses a mismatch with one
message naming both values and what to do. When the noise level of the measurements is unknown
(a raw sinogram or a scanner's k-space), only the geometry is compared.

Measurements are processed in batches of ``batch_size`` slices; ``progress(done, total, {})`` is
called after each batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from spinv.problems import Problem

__all__ = [
    "ANALYTIC",
    "LEARNED",
    "METHODS",
    "PNP",
    "VARIATIONAL",
    "LoadedModel",
    "ReconstructionOptions",
    "check_model_problem",
    "load_reconstruction_model",
    "reconstruct",
    "tune_alpha_for",
]

ANALYTIC = ("fbp", "zero-filled", "noisy", "rss")
VARIATIONAL = ("tv", "tv-smooth", "tgv", "wavelet", "h1", "dtv")
LEARNED = ("lpg", "lpd", "postprocess-cnn")
PNP = ("pnp-pgd", "pnp-admm")
GENERATIVE = ("generative",)
METHODS = ANALYTIC + VARIATIONAL + LEARNED + PNP + GENERATIVE
TUNING_DATA = {"ct": "ct-head", "mri": "brain-t1", "denoise": "natural"}

Progress = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class ReconstructionOptions:
    """How to reconstruct: ``method`` (one of :data:`METHODS`); ``alpha`` (variational weight,
    ``None``: tuned); ``iterations`` (solver / PnP iterations); ``model`` (run directory or zoo
    name, for learned and PnP methods); ``guide`` (the registered reference image of ``dtv``);
    ``pnp_weight`` :math:`\\lambda`, ``pnp_step`` :math:`c`, ``pnp_rho`` :math:`r` (module
    docstring); ``batch_size`` slices at a time; ``seed`` of the tuning simulation; ``prior``
    of ``generative``: ``mean`` | ``covariance`` | ``range``."""

    method: str
    alpha: float | None = None
    iterations: int = 300
    model: str | None = None
    guide: torch.Tensor | None = None
    pnp_weight: float = 1.0
    pnp_step: float = 1.0
    pnp_rho: float = 0.1
    batch_size: int = 8
    seed: int = 0
    prior: str = "covariance"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.alpha is not None and not self.alpha >= 0:
            raise ValueError(f"--alpha {self.alpha!r}: expected a number >= 0 or 'auto'")
        for name in ("iterations", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} {value!r}: expected an integer "
                                 ">= 1")
        if self.method in LEARNED + PNP + GENERATIVE and not self.model:
            raise ValueError(f"--method {self.method} needs --model RUN_DIR or a zoo name "
                             "(`spinv models list`)")
        if not 0 < self.pnp_weight <= 1:
            raise ValueError(f"--pnp-weight {self.pnp_weight!r}: expected a value in (0, 1]")
        if not 0 < self.pnp_step < 2:
            raise ValueError(f"--pnp-step {self.pnp_step!r}: expected a value in (0, 2)")
        if not self.pnp_rho > 0:
            raise ValueError(f"--pnp-rho {self.pnp_rho!r}: expected a positive number")
        if self.prior not in ("mean", "covariance", "range"):
            raise ValueError(f"--prior {self.prior!r}: expected mean, covariance or range")


@dataclass
class LoadedModel:
    """A trained model ready to apply: the network, the problem it was trained for, its
    catalogue name and where it came from."""

    network: torch.nn.Module
    problem: Problem
    name: str
    source: str


def load_reconstruction_model(name_or_path: str) -> LoadedModel:
    """Load a run directory, checkpoint or zoo entry (:func:`spinv.zoo.resolve_model`) with its
    problem."""
    from spinv.training import load_model
    from spinv.zoo import resolve_model

    path = resolve_model(name_or_path)
    network, cfg = load_model(path)
    return LoadedModel(network, Problem.from_config(cfg.problem), cfg.model.name,
                       str(name_or_path))


def check_model_problem(model: LoadedModel, problem: Problem, noise_known: bool = True) -> None:
    """Refuse measurements whose problem is not the model's (module docstring).

    With ``noise_known=False`` the noise model and the simulation grid of the measurements are
    unknown and taken from the model, so only the geometry and the mask are compared.
    """
    theirs = problem
    if model.problem.kind != problem.kind:
        raise ValueError(f"--model {model.source!r} was trained for {model.problem.kind} data, "
                         f"the measurements are {problem.kind}; choose a model for "
                         f"{problem.kind} data (`spinv models list`)")
    if not noise_known:
        changes = {"noise": model.problem.noise}
        if problem.geometry is not None and model.problem.geometry is not None:
            changes["geometry"] = dataclasses.replace(
                problem.geometry, upsample=model.problem.geometry.upsample)
        theirs = dataclasses.replace(problem, **changes)
    diff = model.problem.difference(theirs)
    if diff is not None:
        raise ValueError(
            f"--model {model.source!r} does not match the measurements: {diff} (model vs "
            f"measurements); the model was trained for {model.problem.describe()}. Pass "
            "measurements of that problem (e.g. --size), retrain for yours (`spinv train`), "
            "or choose a matching model (`spinv models list`)")


def tune_alpha_for(problem: Problem, method: str, iterations: int, seed: int = 0) -> float:
    """:math:`\\alpha` maximising the mean PSNR on 4 bundled training images of the problem's
    modality, resized to its image size and simulated with its noise (never the user's data)."""
    import numpy as np

    from spinv.data import load_dataset
    from spinv.variational.reconstruct import VariationalOptions, tune_alpha

    shape = problem.image_shape
    pool = load_dataset(TUNING_DATA[problem.kind], "train")
    train = torch.from_numpy(pool[:: max(1, len(pool) // 4)][:4])
    train = torch.nn.functional.interpolate(
        train[:, None], size=shape, mode="bilinear", antialias=True, align_corners=False,
    ).clamp(0, 1)

    def simulate(images):
        return problem.operator, problem.simulate(problem.ground_truth(images), seed=seed + 1)

    alpha = tune_alpha(simulate, train, method, grid=list(np.logspace(-4, 0, 5)),
                       golden_iterations=4, options=VariationalOptions(iterations=iterations))
    return float(alpha)


def _variational(problem: Problem, y: torch.Tensor, options: ReconstructionOptions,
                 alpha: float) -> torch.Tensor:
    from spinv.variational.reconstruct import VariationalOptions, reconstruct_variational

    if options.method == "dtv" and options.guide is None:
        raise ValueError("--method dtv needs --guide FILE (a registered reference image)")
    solver = VariationalOptions(iterations=options.iterations, nonnegative=problem.kind == "ct")
    return reconstruct_variational(problem.operator, y, options.method, alpha, solver,
                                   reference=options.guide)


def _pnp(problem: Problem, y: torch.Tensor, options: ReconstructionOptions,
         denoiser: LoadedModel) -> torch.Tensor:
    from spinv.learned.pnp import RelaxedDenoiser, operator_norm, pnp_admm, pnp_proximal_gradient

    phi = RelaxedDenoiser(denoiser.network, options.pnp_weight)
    x0 = problem.analytic(y)
    norm2 = operator_norm(problem.operator, x0) ** 2
    if options.method == "pnp-pgd":
        result = pnp_proximal_gradient(problem.operator, y, phi, x0=x0,
                                       step=options.pnp_step / norm2,
                                       iterations=options.iterations)
    else:
        result = pnp_admm(problem.operator, y, phi, rho=options.pnp_rho * norm2, x0=x0,
                          iterations=options.iterations)
    return result.x


def _load_for(problem: Problem, options: ReconstructionOptions,
              noise_known: bool) -> LoadedModel | None:
    if options.method not in LEARNED + PNP + GENERATIVE:
        return None
    model = load_reconstruction_model(options.model)
    if options.method in GENERATIVE:
        from spinv.generative.from_model import check_prior_model

        check_prior_model(model.network, model.name, model.source, problem, noise_known)
        return model
    if options.method in PNP:
        if model.problem.kind != "denoise":
            raise ValueError(f"--model {options.model!r} is a {model.name!r} model for "
                             f"{model.problem.kind} data; PnP needs a denoiser")
        return model
    if model.name != options.method:
        hint = "generative" if model.name == "gaussian-vae" else model.name
        raise ValueError(f"--model {options.model!r} is a {model.name!r} model; pass --method "
                         f"{hint}")
    check_model_problem(model, problem, noise_known)
    return model


@torch.no_grad()
def reconstruct(problem: Problem, y: torch.Tensor, options: ReconstructionOptions,
                progress: Progress | None = None, noise_known: bool = True) -> torch.Tensor:
    """Reconstructions ``(B, 1, H, W)`` of the measurements ``y`` ``(B, 1, ...)`` of
    ``problem`` (float32, or complex64 for MRI except the learned real-valued models)."""
    method = options.method
    if method in ANALYTIC and method != problem.analytic_name:
        raise ValueError(f"--method {method!r} is not defined for {problem.kind} data; use "
                         f"{problem.analytic_name!r} or another method")
    model = _load_for(problem, options, noise_known)
    alpha = options.alpha
    if method in VARIATIONAL and alpha is None:
        if not noise_known:
            raise ValueError("--alpha auto needs the noise level of the measurements: pass "
                             "--photons (CT) or --noise (MRI), or a number for --alpha")
        alpha = tune_alpha_for(problem, method, options.iterations, options.seed)
    if method in GENERATIVE:
        from spinv.generative.from_model import GenerativeReconstructor, tune_prior_weight

        if alpha is None:
            alpha = tune_prior_weight(model.network, problem, options.prior, seed=options.seed)[0]
        model.network = GenerativeReconstructor(model.network, problem.operator, options.prior,
                                                alpha, problem.noise.sigma)
    outs = []
    total = int(y.shape[0])
    for start in range(0, total, options.batch_size):
        yb = y[start : start + options.batch_size]
        if method in ANALYTIC:
            out = problem.analytic(yb)
        elif method in VARIATIONAL:
            with torch.enable_grad():
                out = _variational(problem, yb, options, alpha)
        elif method in LEARNED + GENERATIVE:
            out = model.network(yb)
        else:
            out = _pnp(problem, yb, options, model)
        outs.append(out.detach())
        if progress is not None:
            progress(min(start + options.batch_size, total), total,
                     {} if alpha is None else {"alpha": alpha})
    return torch.cat(outs)

