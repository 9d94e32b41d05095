"""ELBO training of the VAE priors of the generative experiments on the training engine.

:func:`train_vae` trains one :class:`spinv.nn.vae.GaussianVAE` stage
(:class:`spinv.generative.train.TrainSettings`: ``mean``, ``covariance`` or ``joint``, see
:mod:`spinv.generative.train` for the ELBO) with :func:`spinv.training.engine.fit`:

- data: augmented slices (:class:`~spinv.training.sources_images.AugmentedSlices`), one
  generator seeded with ``settings.seed`` for the slices *and* the reparametrised samples;
- objective: :class:`~spinv.training.objectives_generative.NegativeELBO`;
- trainable subset per stage (:data:`STAGE_PARAMETERS`): encoder, mean decoder and
  :math:`\\gamma` (``mean``), the covariance head (``covariance``), everything (``joint``);
- Adam with torch's recursive cosine schedule from ``lr`` down to ``0.05 lr``
  (``schedule="cosine-torch"``, bit-identical to ``CosineAnnealingLR``), gradient norms clipped
  at 100.

:func:`train_generative_models` is the whole recipe: a mean model, then one covariance head per
kind on top of it; each stage leaves a run directory ``OUT/vae-<kind>/`` (checkpoint, config,
``log.jsonl``, summary, provenance) that :func:`load_vae` reads and
that resumes where a killed run stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from spinv.generative.train import SliceSampler, TrainSettings
from spinv.nn.vae import COVARIANCE_KINDS, GaussianVAE
from spinv.training.engine import FitOptions, Progress, fit
from spinv.training.objectives_generative import NegativeELBO
from spinv.training.rundir import RunDirectory, is_run, open_run
from spinv.training.sources_images import AugmentedSlices

__all__ = ["ModelSpec", "STAGE_PARAMETERS", "TERMS", "load_vae", "train_generative_models",
           "train_vae", "vae_history", "vae_run_config"]

STAGE_PARAMETERS: dict[str, tuple[str, ...] | None] = {
    "mean": ("encoder.", "decoder.", "log_gamma"),
    "covariance": ("cov_head.",),
    "joint": None,
}
TERMS = ("loss", "nll", "kl", "nll_per_pixel")
CHECKPOINT_EVERY = 100


def plain(data: Any) -> Any:
    """``data`` as plain JSON types (tuples become lists)."""
    return json.loads(json.dumps(data))


def vae_run_config(model: GaussianVAE, settings: TrainSettings, data: dict | None = None) -> dict:
    """Config of the run of one stage: ``model`` (catalogue name ``gaussian-vae`` and options),
    ``vae`` (the options, read by :func:`~spinv.generative.train.load_vae`), ``train`` (the
    settings) and ``data`` (what the slices are)."""
    return plain({"name": f"vae-{model.kind}", "model": {"name": "gaussian-vae", **model.config},
                  "vae": model.config, "train": asdict(settings), "data": data or {}})


def vae_history(records: Sequence[dict], log_every: int) -> list[dict[str, float]]:
    """Every ``log_every`` steps (and at the last step) the means of :data:`TERMS` over the
    steps since the previous entry, from per-step log records (summed in step order)."""
    history, acc, last = [], {}, None
    records = [r for r in records if "nll" in r]
    for rec in records:
        for k in TERMS:
            acc[k] = acc.get(k, 0.0) + float(rec[k])
        last = int(rec["step"])
        if last % log_every == 0 or rec is records[-1]:
            cnt = log_every if last % log_every == 0 else last % log_every
            history.append({"step": last, **{k: v / cnt for k, v in acc.items()}})
            acc = {}
    return history


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def train_vae(model: GaussianVAE, sampler: SliceSampler, settings: TrainSettings,
              progress: bool | Progress = True, log_every: int = 50,
              run: RunDirectory | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place (module docstring); returns :func:`vae_history` of the run.
    With ``run`` (:func:`~spinv.training.rundir.open_run`) the stage leaves a run directory
    and resumes from its checkpoint. ``progress``: ``True`` for a progress bar, or the
    progress protocol ``progress(step, total, scalars)`` of :func:`~spinv.training.engine.fit`."""
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    if settings.stage == "covariance" and model.cov_head is None:
        raise ValueError(
            f"stage='covariance' needs a covariance head; model covariance={model.kind!r}"
        )
    sampler.to(model.log_gamma.device)
    source = AugmentedSlices(sampler, settings.batch_size, settings.seed)
    options = FitOptions(steps=settings.steps, lr=settings.lr, schedule="cosine-torch",
                         lr_min=settings.lr * 0.05, grad_clip=100.0,
                         trainable=STAGE_PARAMETERS[settings.stage],
                         checkpoint_every=min(CHECKPOINT_EVERY, settings.steps),
                         seed=settings.seed)
    records: list[dict] = []
    bar = _bar(settings.steps, f"vae[{model.kind}/{settings.stage}]", progress is True)

    def on_step(step: int, total: int, rec: dict) -> None:
        records.append(dict(rec))
        if callable(progress):
            progress(step, total, rec)
        if bar is not None:
            bar.update(step - bar.n)
            bar.set_postfix(nll_px=f"{rec['nll_per_pixel']:.3f}", kl=f"{rec['kl']:.1f}")

    try:
        fit(model, source, options, objective=NegativeELBO(settings.stage, settings.beta,
                                                           source.generator),
            run=run, progress=on_step)
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    if run is not None:
        from spinv.training.logging import read_log

        records = read_log(run.path / "log.jsonl")
    return vae_history(records, log_every)


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


def _train_stage(model: GaussianVAE, sampler: SliceSampler, settings: TrainSettings,
                 path: Path, data: dict, progress: bool | Progress) -> list[dict]:
    config = vae_run_config(model, settings, data)
    with open_run(path, config, resume=is_run(path)) as run:
        return train_vae(model, sampler, settings, progress=progress, run=run)


def train_generative_models(
    images,
    out_dir: str | os.PathLike,
    spec: ModelSpec,
    mean_settings: TrainSettings,
    cov_settings: TrainSettings,
    zoom=(0.8, 1.0),
    flip: bool = True,
    device=None,
    progress: bool | Progress = True,
) -> dict[str, GaussianVAE]:
    """Train the mean model, then one covariance head per kind in ``spec.covariances``.

    Each model leaves the run directory ``out_dir/vae-<kind>/`` (``identity`` is the mean model
    itself); a run that exists already is resumed (or, when complete, only loaded). Returns
    ``{kind: model}``.
    """
    out = Path(out_dir)
    sampler = SliceSampler(images, spec.image_size, zoom=zoom, flip=flip)
    data = {"images": int(sampler.hr.shape[0]), "zoom": list(sampler.zoom), "flip": flip}
    common = dict(image_size=spec.image_size, latent_dim=spec.latent_dim, width=spec.width,
                  rank=spec.rank, radius=spec.radius)
    torch.manual_seed(mean_settings.seed)  # parameter initialisation
    mean_model = GaussianVAE(covariance="identity", **common)
    if device is not None:
        mean_model = mean_model.to(device)
    _train_stage(mean_model, sampler, mean_settings, out / "vae-identity", data, progress)
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
        _train_stage(model, sampler, cov_settings, out / f"vae-{kind}", data, progress)
        models[kind] = model
    return {k: models[k] for k in spec.covariances if k in models}


def load_vae(path: str | os.PathLike, device: Any = None) -> GaussianVAE:
    """Rebuild the :class:`GaussianVAE` of a run directory written by :func:`train_vae` (or a
    checkpoint of earlier spinv versions): options from the config's ``vae`` section, weights
    loaded strictly; in eval mode."""
    from spinv.training.checkpoint import load_weights, read_checkpoint

    ck = read_checkpoint(path, map_location="cpu")
    try:
        cfg = dict(ck.metadata["config"]["vae"])
    except (KeyError, TypeError):
        raise ValueError(f"checkpoint {str(ck.path)!r} is not a spinv generative VAE") from None
    cfg["log_var_range"] = tuple(cfg.get("log_var_range", (-12.0, 2.0)))
    return load_weights(GaussianVAE(**cfg), ck, "its VAE config", device)
