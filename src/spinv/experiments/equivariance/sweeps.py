"""Equivariance experiments of thesis §2.5: training-set-size sweep and group-order sweep.

* :func:`run_sweep_n` (§2.5.3/§2.5.4, Figs 2.8-2.11): for each training-set size
  :math:`N` and each model (ordinary, i.e. translation equivariant, and equivariant with
  :math:`H = \\mathbb{Z}_4`, Prop. 2.4.1), train the learned proximal gradient method
  (Algorithm 5, proximal blocks of Eq. (2.12)) on the first :math:`N` training slices and test
  it on held-out slices, upright and randomly rotated, with PSNR/SSIM inside the ROI (the SSIM
  map averaged over the mask, §2.5.2 "Performance measures"). Every :math:`N` uses the same
  number of Adam steps, as in the thesis. :math:`N` is capped at the training slices available
  (``ct-head``: 60, ``brain-t1``: 84); the cap is recorded in ``notes``.
* :func:`run_groups` (§2.5.2, Fig. 2.7): at fixed :math:`N`, the equivariant method with the
  groups :math:`H = \\mathbb{Z}_m` (``"C<m>"``), evaluated on the validation split.

Both follow the experiment protocol (:mod:`spinv.experiments.protocol`):
``run(config, out, progress, resume)``. Data: :mod:`.data`; training (the project's engine):
:mod:`.training`; settings: :mod:`.config`; tables and figures: :mod:`.report`. Every trained
model leaves a run directory ``out/models/<name>`` (``N2-C4``, ``m4``, …) that ``spinv
evaluate`` and ``spinv report`` accept; ``resume=True`` continues the runs of a killed
experiment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spinv.experiments.equivariance.baselines import baseline_metrics
from spinv.experiments.equivariance.config import EquivarianceConfig
from spinv.experiments.equivariance.data import DataSpec, available, data_to, prepare_data
from spinv.experiments.equivariance.evaluation import evaluate_model
from spinv.experiments.equivariance.report import SETS, examples_figure, write_outputs
from spinv.experiments.equivariance.training import LPGSettings, train_lpg
from spinv.experiments.protocol import Progress, staged
from spinv.plotting import save_figure

__all__ = [
    "capped_sizes",
    "load_run_data",
    "n_test_for",
    "run_groups",
    "run_sweep_n",
    "settings_payload",
    "setup_run",
    "train_and_time",
]


def setup_run(cfg: EquivarianceConfig) -> torch.device:
    """Apply ``threads`` and resolve ``device`` (``auto``: CUDA if available, else CPU)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    name = cfg.device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"config key 'device': got {name!r}; expected auto, cpu, cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"config key 'device': {name!r} requested but CUDA is not available")
    return device


def capped_sizes(cfg: EquivarianceConfig, values: list[int], notes: list[str]) -> list[int]:
    """``values`` capped at the training slices of the dataset (a note per cap), duplicates
    dropped."""
    have = available(cfg.problem, "train")
    out: list[int] = []
    for n in values:
        if n > have:
            notes.append(f"N={n} capped at the {have} training slices of the dataset")
            n = have
        if n not in out:
            out.append(n)
    return out


def n_test_for(cfg: EquivarianceConfig, notes: list[str]) -> int:
    """``n_test`` capped at the slices of the evaluation split (with a note)."""
    have = available(cfg.problem, cfg.eval_split)
    if cfg.n_test > have:
        notes.append(f"n_test={cfg.n_test} capped at the {have} slices of split "
                     f"{cfg.eval_split!r}")
        return have
    return cfg.n_test


def load_run_data(cfg: EquivarianceConfig, n_train: int, n_test: int, device: torch.device):
    """The data of one training-set size, on ``device``."""
    data = prepare_data(DataSpec.from_config(cfg), n_train, n_test, seed=cfg.seed,
                        test_split=cfg.eval_split)
    return data_to(data, device)


def train_and_time(cfg: EquivarianceConfig, data, group: str | None, name: str,
                   progress: Progress | None, out: Path, resume: bool = False):
    """Train one model with the settings of ``cfg`` (progress stage ``name``); its run goes to
    ``out/models/<name>``. Returns ``(model, losses, seconds)``."""
    return tuple(train_lpg(data, group, LPGSettings.from_config(cfg), out / "models" / name,
                           resume, staged(progress, name)))


def _entry(model, losses: list[float], seconds: float, metrics: dict, n_train: int) -> dict:
    k = min(10, len(losses))
    return {
        "group": model.group.name if model.group is not None else None,
        "n_train": n_train,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_time_s": seconds,
        "loss_first_10": sum(losses[:k]) / k,
        "loss_last_10": sum(losses[-k:]) / k,
        "losses": losses,
        **metrics,
    }


def settings_payload(cfg: EquivarianceConfig, command: str, keys: tuple[str, ...]
                     ) -> dict[str, Any]:
    """The ``settings`` of a results payload: the common keys, those of the problem and
    ``keys``, the command, the scale, the torch threads and the dataset."""
    common = ("problem", "image_size", "n_test", "width", "iterations", "memory", "steps", "lr",
              "batch_size", "clip_grad_norm", "bf16", "seed", "eval_split")
    extra = ("n_angles", "photons") if cfg.problem == "ct" else ("rate", "noise")
    out = {k: getattr(cfg, k) for k in (*common, *extra, *keys)}
    out.update(command=command, scale=cfg.scale, torch_threads=torch.get_num_threads(),
               dataset={"ct": "ct-head", "mri": "brain-t1"}[cfg.problem])
    return out


def run_sweep_n(cfg: EquivarianceConfig, out: Path, progress: Progress | None = None,
                resume: bool = False) -> dict[str, Any]:
    """Training-set-size sweep (Figs 2.8/2.10); see the module docstring.

    Returns ``{"experiment", "settings", "notes", "results": {"N=<n>": {model: entry}}}``
    where an entry holds ``upright``/``rotated`` metrics (per image and ``mean_*``), training
    losses and wall time.
    """
    device = setup_run(cfg)
    notes: list[str] = []
    sizes = capped_sizes(cfg, cfg.n_train_values, notes)
    n_test = n_test_for(cfg, notes)
    results: dict[str, dict] = {}
    baselines, baseline_recs = None, {}
    for n in sizes:
        data = load_run_data(cfg, n, n_test, device)
        if baselines is None and cfg.baselines:  # the held-out sets are the same for every N
            baselines = baseline_metrics(cfg.tv_tuning(), data, keep=baseline_recs)
        row, recs = {}, {}
        for group in cfg.groups:
            name = group or "ordinary"
            model, losses, secs = train_and_time(cfg, data, group, f"N{n}-{name}", progress,
                                                 Path(out), resume)
            recs[name] = {}
            row[name] = _entry(model, losses, secs,
                               evaluate_model(model, data, cfg.bf16, keep=recs[name]), n)
        results[f"N={n}"] = row
    keys = ("groups", "baselines", "alpha_grid", "tune_images", "tune_iterations")
    payload = {"experiment": "sweep-n", "settings": settings_payload(cfg, "sweep-n", keys),
               "n_train_values": sizes, "notes": notes, "test_angles_deg": data.angles.tolist(),
               "results": results, "baselines": baselines}
    write_outputs(payload, Path(out))
    shown = {**{b["name"]: b for b in (baselines or {}).values() if isinstance(b, dict)
                and "name" in b}, **row}
    for split in SETS:  # Figs 2.9/2.11: examples at the largest N
        fig = examples_figure(data, {**baseline_recs, **recs}, shown, split,
                              f"N={sizes[-1]}, {split}")
        save_figure(fig, Path(out) / f"examples_{split}.png")
    return payload


def run_groups(cfg: EquivarianceConfig, out: Path, progress: Progress | None = None,
               resume: bool = False) -> dict[str, Any]:
    """Group-order sweep (Fig. 2.7): equivariant models with :math:`H=\\mathbb{Z}_m` for each
    ``m`` in ``orders`` (``m = 1``: the trivial group), trained on the same ``n_train`` slices.
    Returns ``{"experiment", "settings", "notes", "results": {"m=<m>": entry}}``."""
    device = setup_run(cfg)
    notes: list[str] = []
    (n,) = capped_sizes(cfg, [cfg.n_train], notes)
    data = load_run_data(cfg, n, n_test_for(cfg, notes), device)
    results: dict[str, dict] = {}
    for m in cfg.orders:
        model, losses, secs = train_and_time(cfg, data, f"C{m}", f"m{m}", progress, Path(out),
                                             resume)
        results[f"m={m}"] = _entry(model, losses, secs, evaluate_model(model, data, cfg.bf16), n)
    payload = {"experiment": "groups", "settings": settings_payload(cfg, "groups", ("orders",)),
               "n_train_used": n, "notes": notes, "test_angles_deg": data.angles.tolist(),
               "results": results}
    write_outputs(payload, Path(out))
    return payload
