r"""Experiment: generative regularisers for MRI vs TV and end-to-end learning (talk 002).

Reproduces, at CPU scale, the comparisons of the talk's slides "Comparison: Covariance Models",
"Comparison: End-to-end Learning" and "Comparison: Other unsupervised methods":

1. train a VAE mean model and covariance heads (identity, diagonal, low-rank + diagonal,
   banded Cholesky precision) on augmented ``brain-t1`` slices (:mod:`spinv.generative.train`);
2. simulate :math:`y = S(Fu+\eta)` on test slices for every sampling rate and noise level of the
   config (:class:`spinv.operators.SubsampledFourier`, :mod:`spinv.sampling`);
3. reconstruct with zero filling, TV (PDHG over real images), the range constraint (Bora et
   al.), the mean-only and the covariance regularisers (alternating minimisation,
   :mod:`spinv.generative.reconstruct`), and a post-processing CNN trained end-to-end for ONE
   setting (``problem.train_setting``);
4. write PSNR/SSIM tables (``results.json``, ``results.md``) and figures: learned covariance
   structure (correlation rows and eigen-images of :math:`\Sigma(z)`), PSNR vs rate per noise
   level, and example reconstructions.

Every regularisation weight is tuned once, on validation slices at the training setting
(like the end-to-end network, which also sees only that setting), and then kept fixed: the
tables show how each method generalises to unseen sampling rates and noise levels. The data
term is :math:`\tfrac1{2\sigma^2}\|Au-y\|^2` with the true :math:`\sigma`, so a fixed weight
is meaningful across noise levels.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_write_text
from spinv.experiments.generative_report import (
    markdown_report,
    metrics,
    plot_covariances,
    plot_examples,
    plot_generalisation,
    setting_key,
)

__all__ = ["DEFAULTS", "METHODS", "end_to_end_config", "load_experiment_config", "make_problem",
           "resolve_device", "run_experiment", "train_end_to_end", "tv_reconstruct"]

METHODS = ("zero-filled", "tv", "range", "mean", "identity", "diagonal", "lowrank",
           "precision", "end-to-end")

DEFAULTS: dict[str, Any] = {
    "name": "generative",
    "seed": 0,
    "device": "cpu",
    "num_threads": 1,
    "data": {"dataset": "brain-t1", "image_size": 32, "zoom": [0.8, 1.25], "flip": True,
             "n_val": 4, "n_test": 8},
    "model": {"latent_dim": 32, "width": 16, "rank": 8, "radius": 2,
              "covariances": ["identity", "diagonal", "lowrank", "precision"]},
    "train": {"mean_steps": 1500, "cov_steps": 500, "batch_size": 32, "lr": 1.0e-3,
              "beta": 1.0},
    "problem": {"pattern": "variable-density", "rates": [0.15, 0.25, 0.4],
                "noise": [0.01, 0.03], "train_setting": {"rate": 0.25, "noise": 0.01},
                "mask_seed": 0},
    "recon": {"method": "alternating", "iterations": 15, "z_steps": 5, "z_lr": 0.05,
              "n_inits": 2, "logdet_weight": 1.0, "cg_iterations": 20},
    "tuning": {"mean": [3.0, 10.0, 30.0, 100.0], "covariance": [0.05, 0.1, 0.3, 1.0],
               "range": [0.1, 1.0, 10.0], "tv": [10.0, 30.0, 100.0, 300.0]},
    "tv": {"iterations": 200},
    "end_to_end": {"steps": 800, "batch_size": 16, "lr": 1.0e-3, "width": 32, "depth": 6},
}


def _merge(base: dict, new: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        where = f"{path}{k}"
        if k not in base:
            raise ValueError(f"config key {where!r} is unknown; expected one of {sorted(base)}")
        if isinstance(base[k], dict) and k not in ("tuning",):
            if not isinstance(v, dict):
                raise ValueError(f"config key {where!r} must be a mapping, got {v!r}")
            out[k] = _merge(base[k], v, where + ".")
        else:
            out[k] = v
    return out


def load_experiment_config(source: str | os.PathLike | dict | None) -> dict:
    """Defaults (:data:`DEFAULTS`) updated by a YAML file or dict; unknown keys raise."""
    if source is None:
        return copy.deepcopy(DEFAULTS)
    if isinstance(source, dict):
        data = source
    else:
        import yaml

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping")
    cfg = _merge(DEFAULTS, data)
    for r in cfg["problem"]["rates"]:
        if not 0 < float(r) <= 1:
            raise ValueError(f"problem.rates has {r!r}; expected values in (0, 1]")
    for s in cfg["problem"]["noise"]:
        if not float(s) > 0:
            raise ValueError(f"problem.noise has {s!r}; expected values > 0")
    return cfg


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------ problems
def make_problem(x: torch.Tensor, rate: float, noise: float, pattern: str, mask_seed: int,
                 noise_seed: int):
    """The MRI problem :math:`A=SF` for ``pattern``/``rate`` (mask seeded by ``mask_seed``)
    with noise level ``noise``, on ``x``'s device, and its data :math:`y=S(Fx+\\eta)`
    (noise seeded by ``noise_seed``): ``(problem, y)``."""
    from spinv.problems import mri_problem

    problem = mri_problem(tuple(x.shape[-2:]), pattern, float(rate), float(noise),
                          seed=mask_seed).to(x.device)
    return problem, problem.simulate(x, seed=noise_seed)


def tv_reconstruct(operator, y: torch.Tensor, lam: float, noise: float, iterations: int = 300):
    """TV over real images: :math:`\\min_u \\tfrac1{2\\sigma^2}\\|Au-y\\|^2 + \\lambda\\,TV(u)`,
    i.e. :math:`\\tfrac12\\|Au-y\\|^2 + \\alpha TV(u)` with :math:`\\alpha=\\lambda\\sigma^2`,
    by PDHG
    (real images enforced by the prox of :math:`G=\\iota_{\\mathbb R^n}`)."""
    from spinv.variational.solvers import LeastSquaresBlock, RegulariserBlock, pdhg
    from spinv.variational.tv import TV

    alpha = lam * noise**2
    blocks = [LeastSquaresBlock(operator, y, op_norm=1.0), RegulariserBlock(TV(alpha=alpha))]
    x0 = operator.analytic(y).real
    x, _ = pdhg(blocks, x0, g_prox=lambda x, t: x.real, g_value=lambda x: x.new_zeros(x.shape[0]),
                iterations=iterations, tol=1e-5, track_objective=False)
    return x.real


class _Context:
    """The trained models and how each method reconstructs with them."""

    def __init__(self, cfg: dict, models: dict, device):
        from spinv.generative.regularisers import (
            CovarianceRegulariser,
            MeanOnlyRegulariser,
            RangeConstraint,
        )

        self.cfg, self.models, self.device = cfg, models, device
        mean_model = models["identity"]
        self.regs = {
            "range": lambda lam: RangeConstraint(mean_model, latent_weight=1.0),
            "mean": lambda lam: MeanOnlyRegulariser(mean_model),
        }
        for kind in models:
            self.regs[kind] = (lambda m: lambda lam: CovarianceRegulariser(
                m, logdet_weight=float(cfg["recon"]["logdet_weight"])))(models[kind])
        self.e2e = None

    def reconstruct(self, method: str, operator, y, noise: float, lam: float, seed: int):
        from spinv.generative.reconstruct import reconstruct_generative

        if method == "zero-filled":
            return operator.analytic(y).real
        if method == "tv":
            return tv_reconstruct(operator, y, lam, noise, self.cfg["tv"]["iterations"])
        if method == "end-to-end":
            self.e2e.operator = operator
            with torch.no_grad():
                return self.e2e(y).real
        rc = self.cfg["recon"]
        reg = self.regs[method](lam)
        # the range constraint: lam weighs the latent penalty against the data term
        res = reconstruct_generative(
            operator, y, reg, lam=lam, noise_std=noise, method=rc["method"],
            iterations=rc["iterations"], z_steps=rc["z_steps"], z_lr=rc["z_lr"],
            n_inits=rc["n_inits"], cg_iterations=rc["cg_iterations"], seed=seed,
        )
        return res.u


def _grid(cfg: dict, method: str) -> list[float]:
    t = cfg["tuning"]
    if method in ("zero-filled", "end-to-end"):
        return [1.0]
    if method in ("tv", "range", "mean"):
        return [float(v) for v in t[method]]
    return [float(v) for v in t["covariance"]]


# ------------------------------------------------------------------------------ end-to-end
def end_to_end_config(cfg: dict) -> dict:
    """The run config (the :mod:`spinv.training.config` schema, so that ``spinv evaluate``,
    ``spinv lipschitz`` and ``spinv report`` accept the run) of the end-to-end network:
    MRI at the training setting, ``postprocess-cnn`` with the ``end_to_end`` options, Adam with
    torch's cosine from ``lr`` to ``0.05 lr``. (The slices are augmented as for the VAE:
    ``data.zoom``/``data.flip``, recorded in the run's provenance.)"""
    from spinv.training.config import parse_config

    d, e, pc = cfg["data"], cfg["end_to_end"], cfg["problem"]
    ts, steps, lr = pc["train_setting"], int(e["steps"]), float(e["lr"])
    return parse_config({
        "name": f"{cfg['name']}/end-to-end",
        "problem": {"kind": "mri", "image_size": int(d["image_size"]),
                    "mask": {"pattern": pc["pattern"], "rate": float(ts["rate"]),
                             "seed": int(pc["mask_seed"])},
                    "noise_sigma": float(ts["noise"])},
        "data": {"dataset": d["dataset"], "resize": "area", "val_size": int(d["n_val"])},
        "model": {"name": "postprocess-cnn", "channels": 1, "width": int(e["width"]),
                  "depth": int(e["depth"]), "init": "adjoint"},
        "train": {"steps": steps, "batch_size": int(e["batch_size"]), "lr": lr,
                  "lr_schedule": "cosine-torch", "lr_min": lr * 0.05,
                  "seed": int(cfg["seed"]) + 18, "checkpoint_every": min(100, steps),
                  "device": str(cfg["device"]), "num_threads": int(cfg["num_threads"])},
    }).to_dict()


def train_end_to_end(cfg: dict, train_images, device, progress: bool = True,
                     run_dir: str | os.PathLike | None = None):
    """Residual post-processing CNN on zero-filled images, trained for ONE (mask, noise): the
    training setting of the config, on augmented training slices with data simulated afresh
    each step (:class:`~spinv.training.sources_images.AugmentedSlices`), loss
    :math:`\\mathrm{mean}(\\mathrm{Re}\\,\\Phi(y)-u)^2`, on the training engine. With ``run_dir``
    the network leaves a run directory there (resumed when it exists)."""
    from spinv.generative.train import SliceSampler
    from spinv.learned.postprocess import PostProcessCNN
    from spinv.problems import Problem
    from spinv.training.config import parse_config
    from spinv.training.engine import FitOptions, fit
    from spinv.training.objectives_generative import RealPartSquaredError
    from spinv.training.rundir import is_run, open_run
    from spinv.training.sources_images import AugmentedSlices

    config = end_to_end_config(cfg)
    e, t = cfg["end_to_end"], config["train"]
    problem = Problem.from_config(parse_config(config).problem).to(device)
    torch.manual_seed(cfg["seed"] + 17)
    net = PostProcessCNN(problem.operator, channels=1, width=int(e["width"]),
                         depth=int(e["depth"]), init="adjoint").to(device)
    sampler = SliceSampler(train_images, cfg["data"]["image_size"], zoom=cfg["data"]["zoom"],
                           flip=cfg["data"]["flip"]).to(device)
    source = AugmentedSlices(sampler, t["batch_size"], t["seed"], problem=problem)
    options = FitOptions(steps=t["steps"], lr=t["lr"], schedule="cosine-torch",
                         lr_min=t["lr_min"], trainable=("net.",),
                         checkpoint_every=t["checkpoint_every"], seed=t["seed"])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=t["steps"], desc="end-to-end", leave=False)
    fit_kw = dict(objective=RealPartSquaredError(),
                  progress=None if bar is None else (lambda k, n, rec: bar.update(k - bar.n)))
    try:
        if run_dir is None:
            fit(net, source, options, **fit_kw)
        else:
            with open_run(run_dir, config, resume=is_run(run_dir),
                          problem=problem.to_dict()) as run:
                fit(net, source, options, run=run, **fit_kw)
    finally:
        if bar is not None:
            bar.close()
    return net.eval()


# ------------------------------------------------------------------------------ driver
def _slices(cfg: dict, device) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Training slices (``(N, H, W)`` array), evenly spaced validation and test slices
    ``(n, 1, S, S)`` on ``device`` (the splits are contiguous slabs)."""
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices

    d = cfg["data"]
    S = int(d["image_size"])
    train_imgs = load_dataset(d["dataset"], "train")
    x_val = prepare_slices(load_dataset(d["dataset"], "val"), S)
    x_test = prepare_slices(load_dataset(d["dataset"], "test"), S)
    x_val = x_val[np.linspace(0, len(x_val) - 1, int(d["n_val"])).round().astype(int)].to(device)
    x_test = x_test[np.linspace(0, len(x_test) - 1, int(d["n_test"])).round().astype(int)]
    return train_imgs, x_val, x_test.to(device)


def _vae_models(cfg: dict, train_imgs, out: Path, models_dir, device, progress: bool) -> dict:
    """Train the VAEs (run directories ``out/models/vae-<kind>``) or load those of
    ``models_dir``; their weights are frozen."""
    from spinv.generative.train import TrainSettings
    from spinv.training.vae import ModelSpec, load_vae, train_generative_models

    d, mcfg, tcfg = cfg["data"], cfg["model"], cfg["train"]
    if models_dir is None:
        spec = ModelSpec(image_size=int(d["image_size"]), latent_dim=int(mcfg["latent_dim"]),
                         width=int(mcfg["width"]), rank=int(mcfg["rank"]),
                         radius=int(mcfg["radius"]), covariances=list(mcfg["covariances"]))
        ms = TrainSettings("mean", int(tcfg["mean_steps"]), int(tcfg["batch_size"]),
                           float(tcfg["lr"]), float(tcfg["beta"]), cfg["seed"])
        cs = TrainSettings("covariance", int(tcfg["cov_steps"]), int(tcfg["batch_size"]),
                           float(tcfg["lr"]), float(tcfg["beta"]), cfg["seed"] + 1)
        models = train_generative_models(train_imgs, out / "models", spec, ms, cs,
                                         zoom=d["zoom"], flip=d["flip"], device=device,
                                         progress=progress)
    else:
        models = {}
        for kind in mcfg["covariances"]:
            models[kind] = load_vae(Path(models_dir) / f"vae-{kind}", device)
        if "identity" not in models:
            models["identity"] = load_vae(Path(models_dir) / "vae-identity", device)
    for m in models.values():
        for p in m.parameters():
            p.requires_grad_(False)
    return models


def _tune(ctx: _Context, methods: list[str], x_val: torch.Tensor,
          progress: bool) -> tuple[dict, dict]:
    """Each method's weight: the best mean validation PSNR at the training setting."""
    cfg = ctx.cfg
    pc = cfg["problem"]
    ts = pc["train_setting"]
    problem_v, y_v = make_problem(x_val, ts["rate"], ts["noise"], pc["pattern"],
                                  pc["mask_seed"], cfg["seed"] + 1000)
    lams: dict[str, float] = {}
    tuning: dict[str, dict[str, float]] = {}
    for method in methods:
        scores = {}
        for lam in _grid(cfg, method):
            u = ctx.reconstruct(method, problem_v.operator, y_v, float(ts["noise"]), lam,
                                cfg["seed"])
            scores[f"{lam:g}"] = float(np.mean(metrics(u, x_val)[0]))
        tuning[method] = scores
        if method not in ("zero-filled", "end-to-end"):
            lams[method] = float(max(scores, key=scores.get))
        if progress:
            print(f"[tune] {method}: {scores}", flush=True)
    return lams, tuning


def _evaluate(ctx: _Context, methods: list[str], lams: dict, x_test: torch.Tensor,
              progress: bool) -> tuple[dict, dict, dict]:
    """PSNR/SSIM tables of every method at every (rate, noise) setting with the tuned weights;
    example reconstructions at the hardest and at the training setting."""
    cfg = ctx.cfg
    pc = cfg["problem"]
    ts = pc["train_setting"]
    table: dict[str, dict] = {m: {} for m in methods}
    per_image: dict[str, dict] = {m: {} for m in methods}
    examples: dict[str, dict] = {}
    shown = (setting_key(min(pc["rates"]), max(pc["noise"])),
             setting_key(ts["rate"], ts["noise"]))
    for si, noise in enumerate(pc["noise"]):
        for ri, rate in enumerate(pc["rates"]):
            key = setting_key(rate, noise)
            problem, y = make_problem(x_test, rate, noise, pc["pattern"], pc["mask_seed"],
                                      cfg["seed"] + 2000 + 10 * si + ri)
            if key in shown:
                examples[key] = {"truth": x_test[:1, 0]}
            for method in methods:
                u = ctx.reconstruct(method, problem.operator, y, float(noise),
                                    lams.get(method, 1.0), cfg["seed"])
                p, s = metrics(u, x_test)
                table[method][key] = {"psnr_mean": float(np.mean(p)), "psnr_std": float(np.std(p)),
                                      "ssim_mean": float(np.mean(s)), "ssim_std": float(np.std(s))}
                per_image[method][key] = {"psnr": p, "ssim": s}
                if key in examples:
                    examples[key][method] = u[:1, 0].detach().clamp(0, 1)
            if progress:
                print(f"[eval] {key}: " + ", ".join(
                    f"{m} {table[m][key]['psnr_mean']:.2f}" for m in methods), flush=True)
    return table, per_image, examples


def _write_outputs(out: Path, summary: dict, examples: dict, models: dict,
                   x_test: torch.Tensor) -> None:
    cfg, meta = summary["config"], summary["meta"]
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "results.md", markdown_report(summary["table"], cfg,
                                                          summary["weights"], meta,
                                                          summary["tuning"]))
    plot_generalisation(summary["table"], cfg, out / "psnr_vs_rate.png")
    for k, ex in examples.items():
        plot_examples(ex, out / f"examples_{k.replace(',', '_').replace('=', '')}.png", k)
    plot_covariances(models, x_test[len(x_test) // 2: len(x_test) // 2 + 1],
                     out / "covariance.png")


def run_experiment(
    config: str | os.PathLike | dict | None,
    out_dir: str | os.PathLike,
    models_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the experiment of the module docstring; returns the summary written to
    ``out_dir/results.json``. ``models_dir`` reuses VAEs from ``spinv generative train``.

    Every trained network leaves a run directory under ``out_dir/models/`` (``vae-<kind>``,
    ``end-to-end``); running the experiment again with the same ``out_dir`` resumes the
    trainings a killed run left unfinished and reuses the finished ones.
    """
    cfg = load_experiment_config(config)
    if seed is not None:
        cfg["seed"] = int(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg["num_threads"]))
    device = resolve_device(cfg["device"])
    t0 = time.time()
    train_imgs, x_val, x_test = _slices(cfg, device)
    models = _vae_models(cfg, train_imgs, out, models_dir, device, progress)
    t_train = time.time() - t0
    ctx = _Context(cfg, models, device)
    t1 = time.time()
    ctx.e2e = train_end_to_end(cfg, train_imgs, device, progress,
                               run_dir=out / "models" / "end-to-end")
    t_e2e = time.time() - t1
    methods = ["zero-filled", "tv", "range", "mean"] + [
        k for k in cfg["model"]["covariances"] if k in models] + ["end-to-end"]
    lams, tuning = _tune(ctx, methods, x_val, progress)
    table, per_image, examples = _evaluate(ctx, methods, lams, x_test, progress)
    meta = {"n_test": len(x_test), "n_val": len(x_val), "seconds": time.time() - t0,
            "seconds_training_vae": t_train, "seconds_training_end_to_end": t_e2e,
            "threads": torch.get_num_threads(), "device": str(device)}
    summary = {"config": cfg, "weights": lams, "tuning": tuning, "table": table,
               "per_image": per_image, "meta": meta,
               "vae_gamma": float(models["identity"].log_gamma.exp())}
    _write_outputs(out, summary, examples, models, x_test)
    return summary
