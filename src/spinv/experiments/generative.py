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
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_save_figure, atomic_write_text

__all__ = ["DEFAULTS", "load_experiment_config", "run_experiment", "METHODS"]

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


def _device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------ problems
def make_problem(x: torch.Tensor, rate: float, noise: float, pattern: str, mask_seed: int,
                 noise_seed: int):
    """Operator :math:`A=SF` for ``pattern``/``rate`` and data :math:`y=S(Fx+\\eta)`."""
    from spinv.operators import SubsampledFourier
    from spinv.sampling import make_mask

    mask = make_mask(pattern, tuple(x.shape[-2:]), float(rate), seed=mask_seed)
    op = SubsampledFourier(mask.to(x.device))
    return op, op.measure(x, sigma=float(noise), seed=noise_seed)


def tv_reconstruct(operator, y: torch.Tensor, lam: float, noise: float, iterations: int = 300):
    """TV over real images: :math:`\\min_u \\tfrac1{2\\sigma^2}\\|Au-y\\|^2 + \\lambda\\,TV(u)`,
    i.e. :math:`\\tfrac12\\|Au-y\\|^2 + \\alpha TV(u)` with :math:`\\alpha=\\lambda\\sigma^2`,
    by PDHG
    (real images enforced by the prox of :math:`G=\\iota_{\\mathbb R^n}`)."""
    from spinv.variational.solvers import LeastSquaresBlock, RegulariserBlock, pdhg
    from spinv.variational.tv import TV

    alpha = lam * noise**2
    blocks = [LeastSquaresBlock(operator, y, op_norm=1.0), RegulariserBlock(TV(alpha=alpha))]
    x0 = operator.adjoint(y).real
    x, _ = pdhg(blocks, x0, g_prox=lambda x, t: x.real, g_value=lambda x: x.new_zeros(x.shape[0]),
                iterations=iterations, tol=1e-5, track_objective=False)
    return x.real


class _Context:
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
            return operator.adjoint(y).real
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


def train_end_to_end(cfg: dict, train_images, operator, noise: float, device, progress=True):
    """Residual post-processing CNN on zero-filled images, trained for one (mask, noise)."""
    from spinv.generative.train import SliceSampler
    from spinv.training.models import PostProcessCNN

    e = cfg["end_to_end"]
    torch.manual_seed(cfg["seed"] + 17)
    net = PostProcessCNN(operator, channels=1, width=int(e["width"]), depth=int(e["depth"]),
                         init="adjoint").to(device)
    sampler = SliceSampler(train_images, cfg["data"]["image_size"], zoom=cfg["data"]["zoom"],
                           flip=cfg["data"]["flip"]).to(device)
    gen = torch.Generator().manual_seed(cfg["seed"] + 18)
    opt = torch.optim.Adam(net.net.parameters(), lr=float(e["lr"]))
    steps = int(e["steps"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, float(e["lr"]) * 0.05)
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="end-to-end", leave=False)
    for _ in it:
        x = sampler.sample(int(e["batch_size"]), gen)
        y = operator.measure(x, sigma=noise, generator=gen)
        loss = (net(y).real - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


# ------------------------------------------------------------------------------ plots
@torch.no_grad()
def plot_covariances(models: dict, x: torch.Tensor, path: Path, pixels=None) -> None:
    """Per covariance model at :math:`z` = encoder mean of ``x`` (one image): :math:`G(z)`, the
    pixel standard deviations, correlation rows
    :math:`\\Sigma_{p\\cdot}/\\sqrt{\\Sigma_{pp}\\Sigma_{qq}}`
    for a few pixels :math:`p` (red positive, blue negative) and the top eigen-images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in models if k != "identity"]
    S = x.shape[-1]
    pixels = pixels or [(S // 2, S // 2), (S // 4, S // 3), (3 * S // 4, 2 * S // 3)]
    ncol = 2 + len(pixels) + 4
    fig, axes = plt.subplots(len(kinds), ncol, figsize=(1.7 * ncol, 1.8 * len(kinds)),
                             squeeze=False)
    for r, kind in enumerate(kinds):
        m = models[kind]
        z = m.encode(x.to(m.log_gamma))[0]
        mean = m.decode_mean(z)[0, 0].cpu()
        Sig = m.covariance(z).dense()[0].double().cpu()
        std = Sig.diagonal().sqrt()
        corr = Sig / (std[:, None] * std[None, :])
        row = axes[r]
        row[0].imshow(mean, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(f"{kind}: G(z)", fontsize=7)
        row[1].imshow(std.reshape(S, S), cmap="magma")
        row[1].set_title("std", fontsize=7)
        for j, (pi, pj) in enumerate(pixels):
            c = corr[pi * S + pj].reshape(S, S).clone()
            c[pi, pj] = 0  # hide the unit diagonal so the neighbours are visible
            v = float(c.abs().max()) or 1.0
            row[2 + j].imshow(c, cmap="seismic", vmin=-v, vmax=v)
            row[2 + j].plot([pj], [pi], "k+", ms=4)
            row[2 + j].set_title(f"corr row ({pi},{pj})", fontsize=7)
        evals, evecs = torch.linalg.eigh(Sig)
        for j in range(4):
            e = evecs[:, -1 - j].reshape(S, S)
            v = float(e.abs().max())
            row[2 + len(pixels) + j].imshow(e, cmap="seismic", vmin=-v, vmax=v)
            row[2 + len(pixels) + j].set_title(f"eig {j + 1} ({float(evals[-1 - j]):.1e})",
                                               fontsize=7)
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def plot_generalisation(table: dict, cfg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [float(r) for r in cfg["problem"]["rates"]]
    noises = [float(s) for s in cfg["problem"]["noise"]]
    ts = cfg["problem"]["train_setting"]
    fig, axes = plt.subplots(1, len(noises), figsize=(4.2 * len(noises), 3.4), squeeze=False)
    for ax, s in zip(axes[0], noises, strict=True):
        for method in table:
            vals = [table[method].get(_key(r, s), {}).get("psnr_mean", np.nan) for r in rates]
            style = "--" if method == "end-to-end" else "-"
            ax.plot(rates, vals, style, marker="o", ms=3, label=method)
        if math.isclose(s, float(ts["noise"])):
            ax.axvline(float(ts["rate"]), color="r", lw=0.8, ls=":")
        ax.set_title(f"noise sigma = {s}", fontsize=9)
        ax.set_xlabel("sampling rate")
        ax.set_ylabel("PSNR [dB]")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def plot_examples(examples: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(examples)
    fig, axes = plt.subplots(1, len(names), figsize=(1.7 * len(names), 2.0), squeeze=False)
    for a, n in zip(axes[0], names, strict=True):
        a.imshow(examples[n][0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(n, fontsize=7)
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


# ------------------------------------------------------------------------------ driver
def _key(rate: float, noise: float) -> str:
    return f"rate={float(rate):g},noise={float(noise):g}"


def _metrics(u: torch.Tensor, x: torch.Tensor) -> tuple[list[float], list[float]]:
    from spinv.metrics import psnr, ssim

    u = u.detach().float().cpu()
    x = x.float().cpu()
    return psnr(u, x, data_range=1.0).tolist(), ssim(u, x, data_range=1.0).tolist()


def _markdown(table: dict, cfg: dict, lams: dict, meta: dict, tuning: dict | None = None) -> str:
    rates = [float(r) for r in cfg["problem"]["rates"]]
    noises = [float(s) for s in cfg["problem"]["noise"]]
    ts = cfg["problem"]["train_setting"]
    keys = [_key(r, s) for s in noises for r in rates]
    train_key = _key(ts["rate"], ts["noise"])
    head = "| method | weight | " + " | ".join(
        k.replace("rate=", "r ").replace(",noise=", ", s ") + (" (train)" if k == train_key
                                                               else "") for k in keys) + " |"
    lines = [f"# {cfg['name']}: generative regularisers for MRI", "",
             f"{meta['n_test']} test slices of {cfg['data']['dataset']} at "
             f"{cfg['data']['image_size']}x{cfg['data']['image_size']}, pattern "
             f"{cfg['problem']['pattern']}; weights tuned on {meta['n_val']} validation "
             f"slices at the training setting ({train_key}). Mean +- std over test slices.",
             ""]
    for metric, fmt in (("psnr", "{:.2f} +- {:.2f}"), ("ssim", "{:.3f} +- {:.3f}")):
        lines += [f"## {metric.upper()}", "", head, "|" + "---|" * (len(keys) + 2)]
        for method in table:
            row = table[method]
            cells = [fmt.format(row[k][f"{metric}_mean"], row[k][f"{metric}_std"]) for k in keys]
            lam = lams.get(method)
            lines.append(f"| {method} | {'' if lam is None else f'{lam:g}'} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    if tuning:
        lines += ["## Weight tuning (mean validation PSNR per weight)", ""]
        for method, scores in tuning.items():
            if len(scores) < 2:
                continue
            best = max(scores, key=scores.get)
            edge = " (best at the edge of the grid)" if best in (next(iter(scores)),
                                                                 list(scores)[-1]) else ""
            lines.append(f"- {method}: " + ", ".join(f"{k}: {v:.2f}" for k, v in scores.items())
                         + edge)
        lines.append("")
    lines += [f"Wall time: {meta['seconds']:.0f} s ({meta['threads']} thread(s), device "
              f"{meta['device']})", ""]
    return "\n".join(lines)


def run_experiment(
    config: str | os.PathLike | dict | None,
    out_dir: str | os.PathLike,
    models_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the experiment of the module docstring; returns the summary written to
    ``out_dir/results.json``. ``models_dir`` reuses VAEs from ``spinv generative train``."""
    from spinv.data import load_dataset
    from spinv.generative.train import (
        ModelSpec,
        TrainSettings,
        load_vae,
        prepare_slices,
        train_generative_models,
    )

    cfg = load_experiment_config(config)
    if seed is not None:
        cfg["seed"] = int(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg["num_threads"]))
    device = _device(cfg["device"])
    t0 = time.time()
    d, mcfg, tcfg = cfg["data"], cfg["model"], cfg["train"]
    S = int(d["image_size"])
    train_imgs = load_dataset(d["dataset"], "train")
    x_val = prepare_slices(load_dataset(d["dataset"], "val"), S)
    x_test = prepare_slices(load_dataset(d["dataset"], "test"), S)
    # evenly spaced slices (the splits are contiguous slabs)
    x_val = x_val[np.linspace(0, len(x_val) - 1, int(d["n_val"])).round().astype(int)].to(device)
    x_test = x_test[np.linspace(0, len(x_test) - 1, int(d["n_test"])).round().astype(int)]
    x_test = x_test.to(device)

    if models_dir is None:
        spec = ModelSpec(image_size=S, latent_dim=int(mcfg["latent_dim"]),
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
    t_train = time.time() - t0
    for m in models.values():
        for p in m.parameters():
            p.requires_grad_(False)

    ctx = _Context(cfg, models, device)
    pc = cfg["problem"]
    ts = pc["train_setting"]
    op_train, _ = make_problem(x_val, ts["rate"], ts["noise"], pc["pattern"], pc["mask_seed"], 0)
    t1 = time.time()
    ctx.e2e = train_end_to_end(cfg, train_imgs, op_train, float(ts["noise"]), device, progress)
    t_e2e = time.time() - t1

    methods = ["zero-filled", "tv", "range", "mean"] + [
        k for k in mcfg["covariances"] if k in models] + ["end-to-end"]
    # ---- tune weights on validation slices at the training setting
    op_v, y_v = make_problem(x_val, ts["rate"], ts["noise"], pc["pattern"], pc["mask_seed"],
                             cfg["seed"] + 1000)
    lams: dict[str, float] = {}
    tuning: dict[str, dict[str, float]] = {}
    for method in methods:
        grid = _grid(cfg, method)
        scores = {}
        for lam in grid:
            u = ctx.reconstruct(method, op_v, y_v, float(ts["noise"]), lam, cfg["seed"])
            scores[f"{lam:g}"] = float(np.mean(_metrics(u, x_val)[0]))
        tuning[method] = scores
        if method not in ("zero-filled", "end-to-end"):
            lams[method] = float(max(scores, key=scores.get))
        if progress:
            print(f"[tune] {method}: {scores}", flush=True)

    # ---- evaluate on all settings
    table: dict[str, dict] = {m: {} for m in methods}
    per_image: dict[str, dict] = {m: {} for m in methods}
    examples = {}
    ex_key = _key(min(pc["rates"]), max(pc["noise"]))
    for si, noise in enumerate(pc["noise"]):
        for ri, rate in enumerate(pc["rates"]):
            key = _key(rate, noise)
            op, y = make_problem(x_test, rate, noise, pc["pattern"], pc["mask_seed"],
                                 cfg["seed"] + 2000 + 10 * si + ri)
            if key == ex_key or key == _key(ts["rate"], ts["noise"]):
                examples[key] = {"truth": x_test[:1, 0]}
            for method in methods:
                u = ctx.reconstruct(method, op, y, float(noise), lams.get(method, 1.0),
                                    cfg["seed"])
                p, s = _metrics(u, x_test)
                table[method][key] = {"psnr_mean": float(np.mean(p)), "psnr_std": float(np.std(p)),
                                      "ssim_mean": float(np.mean(s)), "ssim_std": float(np.std(s))}
                per_image[method][key] = {"psnr": p, "ssim": s}
                if key in examples:
                    examples[key][method] = u[:1, 0].detach().clamp(0, 1)
            if progress:
                print(f"[eval] {key}: " + ", ".join(
                    f"{m} {table[m][key]['psnr_mean']:.2f}" for m in methods), flush=True)

    seconds = time.time() - t0
    meta = {"n_test": len(x_test), "n_val": len(x_val), "seconds": seconds,
            "seconds_training_vae": t_train, "seconds_training_end_to_end": t_e2e,
            "threads": torch.get_num_threads(), "device": str(device)}
    summary = {"config": cfg, "weights": lams, "tuning": tuning, "table": table,
               "per_image": per_image, "meta": meta,
               "vae_gamma": float(models["identity"].log_gamma.exp())}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "results.md", _markdown(table, cfg, lams, meta, tuning))
    plot_generalisation(table, cfg, out / "psnr_vs_rate.png")
    for k, ex in examples.items():
        plot_examples(ex, out / f"examples_{k.replace(',', '_').replace('=', '')}.png", k)
    plot_covariances(models, x_test[len(x_test) // 2: len(x_test) // 2 + 1],
                     out / "covariance.png")
    return summary
