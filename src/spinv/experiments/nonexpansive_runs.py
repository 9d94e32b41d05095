"""Config-driven runs of the chapter-3 denoising experiments: ``spinv nonexpansive toy``
(:func:`run_toy`, thesis Fig. 3.1) and ``spinv nonexpansive denoise`` (:func:`run_denoise`,
Fig. 3.2, Table 3.1), with settings from :mod:`spinv.experiments.nonexpansive_config`; each
writes ``results.json``, ``results.md`` and PNG figures to its output directory (atomically),
and every trained network leaves a run directory under ``OUT/runs/`` (checkpoint, config,
``log.jsonl``, summary, provenance); running a command again with the same ``--out`` resumes
a killed run. The maths lives in :mod:`spinv.experiments.denoising`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from spinv.experiments.denoising import (
    DenoiseExperiment,
    default_models,
    denoising_experiment,
    machine_info,
    toy_absolute_value,
    write_json,
)

__all__ = ["DENOISE_KEYS", "progress_bar", "run_denoise", "run_toy", "setup_device"]

# keys of the ``denoise`` config section that are settings of :class:`DenoiseExperiment`
DENOISE_KEYS = ("sigma", "steps", "width", "depth", "dncnn_depth", "crop", "batch_size", "lr",
                "test_size", "include_dncnn", "include_tv", "seed", "dncnn_width",
                "dncnn_batch_norm", "lr_schedule", "n_test", "tv_iterations", "tv_tune_crops")


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over ``total`` steps (a silent one unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def setup_device(cfg: dict):
    """Apply ``cfg["threads"]`` (torch intra-op threads) and return the device of
    ``cfg["device"]``."""
    from spinv.experiments.nonexpansive_config import resolve_device

    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg["threads"])
    return resolve_device(cfg.get("device", "auto"))


def run_toy(cfg: dict, out: str | os.PathLike, progress: bool = True) -> dict:
    """``spinv nonexpansive toy``: :func:`toy_absolute_value` with the settings of ``cfg``
    (section ``toy`` of :mod:`~spinv.experiments.nonexpansive_config`); writes
    ``results.json``, ``results.md`` and ``toy_fit.png`` to ``out``."""
    from spinv.atomic import atomic_write_text
    from spinv.experiments.nonexpansive_report import markdown_table

    setup_device(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with progress_bar(2 * cfg["steps"], "toy |x|", progress) as bar:
        r = toy_absolute_value(cfg["n_points"], cfg["steps"], cfg["lr"], cfg["seed"],
                               plot=out / "toy_fit.png", depth=cfg["depth"],
                               hidden=cfg["hidden"], step=cfg["step"], callback=bar.update,
                               runs_dir=out / "runs")
    payload = {"command": "toy", "config": cfg, "machine": machine_info(),
               "seconds": time.perf_counter() - t0, "result": r}
    write_json(out / "results.json", payload)
    rows = [["nonexpansive Xi (Algorithm 7)", r["train_loss"]["nonexpansive"],
             r["nonexpansive_max_slope"], r["certified_lipschitz"]],
            ["unconstrained ResNet", r["train_loss"]["unconstrained"],
             r["unconstrained_max_slope"], None]]
    md = ["# Toy |x| fit (thesis Fig. 3.1)", "",
          f"{cfg['n_points']} random points in [-1, 1], {cfg['steps']} Adam steps each, "
          f"seed {cfg['seed']}. Max slope measured on a grid of 801 points in [-2, 2] "
          "(a lower bound of the Lipschitz constant).", "",
          markdown_table(["network", "train MSE", "max slope", "certified Lipschitz"],
                         [[n, f"{a:.2e}", b, c] for n, a, b, c in rows]), "",
          "![fit](toy_fit.png)", ""]
    atomic_write_text(out / "results.md", "\n".join(md))
    return payload


def _denoise_report(out: Path, r: dict, cfg: dict, done: bool) -> None:
    """``results.md`` and ``psnr.png`` of the methods finished so far."""
    from spinv.atomic import atomic_write_text
    from spinv.experiments.nonexpansive_report import markdown_table, plot_psnr

    if r["models"]:
        plot_psnr(r["models"], r["noisy"], out / "psnr.png",
                  title=f"natural test crops, sigma = {cfg['sigma']}")
    rows = [["noisy input", r["noisy"]["psnr_mean"], r["noisy"]["psnr_std"], None, None, None]]
    for name, m in r["models"].items():
        rows.append([name, m["psnr_mean"], m["psnr_std"], m.get("certified_lipschitz"),
                     m.get("steps"), m.get("train_seconds", m.get("eval_seconds"))])
    c = r["config"]
    md = ["# Denoising natural images (thesis Fig. 3.2, Table 3.1)", "",
          f"sigma = {c['sigma']}, {c['n_train']} training images (random {c['crop']}x"
          f"{c['crop']} crops, batch {c['batch_size']}, fresh noise each step), {c['n_test']} "
          f"test images ({c['test_size'] or 'full'} px centre crops); width {c['width']}, "
          f"depth {c['depth']}, {c['steps']} Adam steps (lr {c['lr']}, {c['lr_schedule']}), "
          f"seed {c['seed']}, device {c['device']}, {r['machine']['torch_threads']} torch "
          "thread(s). R: residual id - gamma Gamma (Eq. 3.6); NR: gamma Gamma (Eq. 3.5). "
          "'certified Lip' is a provable bound (DnCNN: loose product of layer norms); "
          "'seconds': training (TV: evaluation) wall time on this machine.", "",
          markdown_table(["method", "PSNR mean (dB)", "std", "certified Lip", "steps",
                          "seconds"], rows), "",
          "" if done else "*(run in progress: methods still missing)*", "",
          "![psnr](psnr.png)" if r["models"] else "", ""]
    atomic_write_text(out / "results.md", "\n".join(md))


def run_denoise(cfg: dict, out: str | os.PathLike, progress: bool = True) -> dict:
    """``spinv nonexpansive denoise``: :func:`denoising_experiment` with the settings of
    ``cfg`` (section ``denoise``); writes ``results.json``, ``results.md`` (Table 3.1-style)
    and ``psnr.png`` (Fig. 3.2-style) to ``out``, refreshed after every method."""
    device = setup_device(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = default_models(cfg["width"], cfg["depth"], cfg["gammas"], cfg["residual"],
                            cfg["higher_order"], cfg["step"])
    options = DenoiseExperiment(**{k: cfg[k] for k in DENOISE_KEYS}, device=device)
    n_nets = len(models) + int(cfg["include_dncnn"])
    with progress_bar(n_nets * cfg["steps"], "denoise", progress) as bar:
        def log(s: str) -> None:
            if progress:
                bar.write(s)
            else:
                print(s, flush=True)

        def on_save(partial: dict) -> None:
            write_json(out / "results.json", {"command": "denoise", "settings": cfg,
                                              **partial})
            _denoise_report(out, partial, cfg, done=False)

        r = denoising_experiment(options, models, log=log, callback=bar.update,
                                 on_save=on_save, runs_dir=out / "runs")
    payload = {"command": "denoise", "settings": cfg, **r}
    write_json(out / "results.json", payload)
    _denoise_report(out, r, cfg, done=True)
    return payload
