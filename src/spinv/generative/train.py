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

:func:`train_generative_models` does the whole recipe: one mean model, then one covariance head
per requested kind, each saved as a checkpoint (:func:`save_vae` / :func:`load_vae`, safetensors
+ JSON via :mod:`spinv.training.checkpoint`).

Data augmentation (:class:`SliceSampler`): random zooms (in or out, scale in ``zoom``), small
shifts and horizontal flips of the slices, resampled to ``image_size`` by an affine grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spinv.nn.covariance import ScaledIdentity
from spinv.nn.vae import COVARIANCE_KINDS, GaussianVAE

__all__ = [
    "TrainSettings",
    "SliceSampler",
    "prepare_slices",
    "elbo_terms",
    "train_vae",
    "train_generative_models",
    "save_vae",
    "load_vae",
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
    slice (pre-smoothed to ``2 S``) bilinearly onto the ``S x S`` grid.

    >>> import torch
    >>> s = SliceSampler(torch.rand(5, 64, 64).numpy(), size=16)
    >>> s.sample(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 1, 16, 16])
    """

    def __init__(self, images, size: int, zoom=(0.8, 1.0), flip: bool = True):
        lo, hi = float(zoom[0]), float(zoom[1])
        if not 0 < lo <= hi <= 2:
            raise ValueError(f"zoom={tuple(zoom)!r}; expected 0 < low <= high <= 2")
        self.size = int(size)
        self.zoom = (lo, hi)
        self.flip = bool(flip)
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
        src = self.hr[idx.to(self.hr.device)]
        grid = F.affine_grid(theta.to(src), (batch, 1, self.size, self.size), align_corners=False)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


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


def _trainable(model: GaussianVAE, stage: str) -> list[torch.nn.Parameter]:
    if stage == "mean":
        return list(model.encoder.parameters()) + list(model.decoder.parameters()) + [
            model.log_gamma
        ]
    if stage == "covariance":
        if model.cov_head is None:
            raise ValueError(
                f"stage='covariance' needs a covariance head; model covariance={model.kind!r}"
            )
        return list(model.cov_head.parameters())
    return list(model.parameters())


def train_vae(
    model: GaussianVAE,
    sampler: SliceSampler,
    settings: TrainSettings,
    progress: bool = True,
    log_every: int = 50,
) -> list[dict[str, float]]:
    """Train ``model`` in place with Adam on augmented batches from ``sampler``.

    Returns the history: every ``log_every`` steps a dict with ``step``, ``loss``, ``nll``,
    ``kl``, ``nll_per_pixel`` (running means over the last ``log_every`` steps).
    """
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    params = _trainable(model, settings.stage)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    device = model.log_gamma.device
    sampler.to(device)
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.Adam(params, lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.steps, settings.lr * 0.05)
    history: list[dict[str, float]] = []
    acc: dict[str, float] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps, desc=f"vae[{model.kind}/{settings.stage}]", leave=False)
    model.train()
    try:
        for step in range(1, settings.steps + 1):
            x = sampler.sample(settings.batch_size, gen)
            terms = elbo_terms(model, x, gen, settings.stage, settings.beta)
            opt.zero_grad()
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 100.0)
            opt.step()
            sched.step()
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + float(v.detach())
            if step % log_every == 0 or step == settings.steps:
                cnt = log_every if step % log_every == 0 else step % log_every
                rec = {"step": step, **{k: v / cnt for k, v in acc.items()}}
                history.append(rec)
                acc = {}
                if bar is not None:
                    bar.set_postfix(nll_px=f"{rec['nll_per_pixel']:.3f}", kl=f"{rec['kl']:.1f}")
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
        for p in model.parameters():
            p.requires_grad_(True)
        model.eval()
    return history


def save_vae(directory, model: GaussianVAE, history=None, extra: dict | None = None) -> Path:
    """Checkpoint ``model`` (safetensors + JSON, atomic) into run directory ``directory``."""
    from spinv.training.checkpoint import save_checkpoint

    meta = {"history": history or [], **(extra or {})}
    return save_checkpoint(directory, model, None, step=0, config={"vae": model.config}, extra=meta)


def load_vae(path, device=None) -> GaussianVAE:
    """Rebuild a :class:`GaussianVAE` saved by :func:`save_vae` (run or checkpoint directory)."""
    from spinv.training.checkpoint import read_checkpoint

    ck = read_checkpoint(path, map_location="cpu")
    try:
        cfg = dict(ck.metadata["config"]["vae"])
    except (KeyError, TypeError):
        raise ValueError(f"checkpoint {str(ck.path)!r} is not a spinv generative VAE") from None
    cfg["log_var_range"] = tuple(cfg.get("log_var_range", (-12.0, 2.0)))
    model = GaussianVAE(**cfg)
    try:
        model.load_state_dict(ck.model_state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {str(ck.path)!r} does not match its VAE config: {err}"
        ) from None
    if device is not None:
        model = model.to(device)
    return model.eval()


@dataclass
class ModelSpec:
    """Architecture shared by the mean model and every covariance head."""

    image_size: int = 32
    latent_dim: int = 32
    width: int = 16
    rank: int = 8
    radius: int = 2
    covariances: list[str] = field(
        default_factory=lambda: ["identity", "diagonal", "lowrank", "precision"]
    )

    def __post_init__(self):
        for c in self.covariances:
            if c not in COVARIANCE_KINDS:
                raise ValueError(
                    f"model.covariances has {c!r}; expected items of {COVARIANCE_KINDS}"
                )


def train_generative_models(
    images,
    out_dir,
    spec: ModelSpec,
    mean_settings: TrainSettings,
    cov_settings: TrainSettings,
    zoom=(0.8, 1.0),
    flip: bool = True,
    device=None,
    progress: bool = True,
) -> dict[str, GaussianVAE]:
    """Train the mean model, then one covariance head per kind in ``spec.covariances``.

    Writes ``out_dir/vae-<kind>/`` checkpoints (``identity`` is the mean model itself) and
    returns ``{kind: model}``.
    """
    out = Path(out_dir)
    sampler = SliceSampler(images, spec.image_size, zoom=zoom, flip=flip)
    common = dict(image_size=spec.image_size, latent_dim=spec.latent_dim, width=spec.width,
                  rank=spec.rank, radius=spec.radius)
    torch.manual_seed(mean_settings.seed)  # parameter initialisation
    mean_model = GaussianVAE(covariance="identity", **common)
    if device is not None:
        mean_model = mean_model.to(device)
    hist = train_vae(mean_model, sampler, mean_settings, progress=progress)
    save_vae(out / "vae-identity", mean_model, hist, {"settings": asdict(mean_settings)})
    models = {"identity": mean_model}
    for k, kind in enumerate(spec.covariances):
        if kind == "identity":
            continue
        torch.manual_seed(cov_settings.seed + 1 + k)
        model = GaussianVAE(covariance=kind, **common)
        if device is not None:
            model = model.to(device)
        state = {
            k2: v for k2, v in mean_model.state_dict().items() if not k2.startswith("cov_head")
        }
        model.load_state_dict(state, strict=False)
        hist = train_vae(model, sampler, cov_settings, progress=progress)
        save_vae(out / f"vae-{kind}", model, hist, {"settings": asdict(cov_settings)})
        models[kind] = model
    return {k: models[k] for k in spec.covariances if k in models}
