"""Experiment ``compare-models``: trained models against FBP (zero filling) and TV on the
held-out slab, upright and rotated, under the chapter-2 protocol (thesis §2.5.3).

The data are those of the other equivariance experiments (:func:`.data.prepare_data`): held-out
slices of ``eval_split`` area-averaged to ``image_size``, rotated at the bundled resolution, and
measured with the problem of the config (CT: ``n_angles`` views, ``photons`` per detector pixel,
simulated on a twice finer grid). TV's :math:`\\alpha` is tuned on the first ``tune_images``
*training* slices (:func:`.baselines.baseline_metrics`), never on held-out ones. Each model --
a run directory or a name of :mod:`spinv.zoo` -- must have been trained for exactly this
problem (:func:`spinv.reconstruction.check_model_problem`); it is applied in float32.

Reported per method and set: mean ± standard deviation over the slices of PSNR and SSIM, on
the whole image and inside the region of interest (the body mask for CT).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spinv.experiments.equivariance.config import EquivarianceConfig
from spinv.experiments.protocol import Progress
from spinv.typed_config import bounds

__all__ = ["CompareModelsConfig", "comparison_text", "format_comparison", "run_compare_models"]

METRICS = (("psnr_roi", "PSNR (body)", 2), ("ssim_roi", "SSIM (body)", 3),
           ("psnr", "PSNR (image)", 2), ("ssim", "SSIM (image)", 3))


@dataclass(frozen=True)
class CompareModelsConfig(EquivarianceConfig):
    """``compare-models``: the equivariance settings (problem, ``image_size``, ``n_test``,
    ``eval_split``, ``seed``, TV tuning) plus ``models``, run directories or zoo names, and
    ``zoom``: shrink the held-out slices about the centre by this factor (at the bundled
    resolution, before area averaging; 1: as they are) -- a field-of-view stress test, e.g.
    on the validation split, that needs no other data (CT only)."""

    models: list[str] = field(default_factory=lambda: ["ct64-lpg-c4", "ct64-lpd-c4",
                                                       "ct64-lpd-c4-aug"])
    n_test: int = field(default=14, metadata=bounds(1))
    zoom: float = field(default=1.0, metadata=bounds(0.0, 1.0, lo_open=True))


def _problem_of(cfg: CompareModelsConfig):
    from spinv.problems import ct_problem, mri_problem

    if cfg.problem == "ct":
        return ct_problem(cfg.image_size, cfg.n_angles, photons=cfg.photons, upsample=2)
    return mri_problem(cfg.image_size, "lines", cfg.rate, cfg.noise, seed=cfg.seed)


def _summary(metrics: dict) -> dict:
    out = {}
    for key, _, _ in METRICS:
        values = metrics[key]
        out[key] = {"mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def _model_entry(name: str, cfg: CompareModelsConfig, data) -> dict[str, Any]:
    from spinv.experiments.equivariance.evaluation import evaluate_model
    from spinv.reconstruction import check_model_problem, load_reconstruction_model

    loaded = load_reconstruction_model(name)
    check_model_problem(loaded, _problem_of(cfg))
    metrics = evaluate_model(loaded.network, data)
    return {"source": name, "model": loaded.name,
            "parameters": sum(p.numel() for p in loaded.network.parameters()),
            **{split: {**metrics[split], "summary": _summary(metrics[split])}
               for split in ("upright", "rotated")}}


def _zoomed_ct_data(cfg: CompareModelsConfig):
    """The CT data of :func:`.data.prepare_ct_data` with the held-out slices shrunk by
    ``cfg.zoom`` at the bundled resolution (then area-averaged, rotated and measured as usual)."""
    from spinv.data.transforms import body_mask_ct
    from spinv.experiments.equivariance.data import assemble_data, downsample, load_ct_slices
    from spinv.operators import ParallelBeamCT
    from spinv.operators.ct import simulate_ct
    from spinv.training.data import zoom_out

    if cfg.problem != "ct":
        raise ValueError("config key 'zoom': the field-of-view stress test is for CT only")
    native = zoom_out(load_ct_slices(cfg.eval_split, cfg.n_test, None), cfg.zoom)
    return assemble_data(
        ParallelBeamCT(cfg.image_size, cfg.n_angles),
        load_ct_slices("train", cfg.tune_images, cfg.image_size),
        downsample(native, cfg.image_size),
        lambda x, s: simulate_ct(x, cfg.n_angles, photons=cfg.photons, seed=s),
        body_mask_ct, cfg.seed, x_test_native=native)


def run_compare_models(cfg: CompareModelsConfig, out: Path, progress: Progress | None = None,
                       resume: bool = False) -> dict[str, Any]:
    """Evaluate ``cfg.models`` and the baselines; writes ``results.json`` and ``results.md``."""
    from spinv.experiments.equivariance.baselines import baseline_metrics
    from spinv.experiments.equivariance.data import DataSpec, prepare_data
    from spinv.experiments.equivariance.report import write_payload

    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    if cfg.zoom < 1.0:
        data = _zoomed_ct_data(cfg)
    else:
        data = prepare_data(DataSpec.from_config(cfg), cfg.tune_images, cfg.n_test, cfg.seed,
                            test_split=cfg.eval_split)
    total = len(cfg.models) + 1
    base = baseline_metrics(cfg.tv_tuning(), data)
    methods: dict[str, Any] = {}
    for key in ("analytic", "TV"):
        methods[base[key]["name"]] = {
            split: {**base[key][split], "summary": _summary(base[key][split])}
            for split in ("upright", "rotated")}
    if progress is not None:
        progress(1, total, {"stage": "baselines"})
    for i, name in enumerate(cfg.models):
        methods[Path(name).name] = _model_entry(name, cfg, data)
        if progress is not None:
            progress(i + 2, total, {"stage": Path(name).name})
    payload = {"experiment": "compare-models",
               "settings": {"problem": cfg.problem, "image_size": cfg.image_size,
                            "n_test": len(data.x_test), "eval_split": cfg.eval_split,
                            "n_angles": cfg.n_angles, "photons": cfg.photons,
                            "seed": cfg.seed, "tv_alpha": base["alpha"],
                            "tune_images": cfg.tune_images, "precision": "float32",
                            "zoom": cfg.zoom,
                            "test_angles_deg": data.angles.tolist()},
               "methods": methods, "notes": []}
    write_payload(Path(out), payload, format_comparison(payload))
    return payload


def format_comparison(payload: dict[str, Any]) -> str:
    """Markdown table: mean ± std per method and set (module docstring)."""
    s = payload["settings"]
    head = "| method | set | " + " | ".join(label for _, label, _ in METRICS) + " |"
    zoom = f", shrunk by {s['zoom']:g}" if s.get("zoom", 1.0) < 1.0 else ""
    lines = [f"Held-out {s['eval_split']} slices: {s['n_test']}{zoom}, {s['problem']} "
             f"{s['image_size']}², TV alpha {s['tv_alpha']:.4g} (tuned on {s['tune_images']} "
             "training slices), float32.", "", head,
             "|" + "---|" * (len(METRICS) + 2)]
    for name, entry in payload["methods"].items():
        for split in ("upright", "rotated"):
            cells = [f"{entry[split]['summary'][k]['mean']:.{d}f} ± "
                     f"{entry[split]['summary'][k]['std']:.{d}f}" for k, _, d in METRICS]
            lines.append(f"| {name} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_text(results: dict[str, Any], out: Path) -> str:
    """What ``spinv experiment run equivariance compare-models`` prints."""
    return format_comparison(results) + f"\nwrote {Path(out) / 'results.md'}"
