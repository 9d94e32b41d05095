r"""The end-to-end baseline of the generative experiment: a residual post-processing CNN on
zero-filled images, trained for ONE (mask, noise) setting -- the config's training setting --
on augmented training slices with data simulated afresh each step
(:class:`~spinv.training.sources_images.AugmentedSlices`), loss
:math:`\mathrm{mean}(\mathrm{Re}\,\Phi(y)-u)^2`, on :func:`spinv.training.engine.fit`. It
leaves a run directory that ``spinv evaluate``, ``spinv lipschitz`` and ``spinv report``
accept.
"""

from __future__ import annotations

import os

import torch

from spinv.experiments.generative.config import GenerativeConfig
from spinv.experiments.protocol import Progress, staged

__all__ = ["end_to_end_config", "train_end_to_end"]


def end_to_end_config(config: GenerativeConfig) -> dict:
    """The run config (the :mod:`spinv.training.config` schema) of the end-to-end network:
    MRI at the training setting, ``postprocess-cnn`` with the ``end_to_end`` options, Adam with
    torch's cosine from ``lr`` to ``0.05 lr``. (The slices are augmented as for the VAE:
    ``data.zoom``/``data.flip``, recorded in the run's provenance.)"""
    from spinv.training.config import parse_config

    d, e, pc = config.data, config.end_to_end, config.problem
    ts, steps, lr = pc.train_setting, int(e.steps), float(e.lr)
    return parse_config({
        "name": f"{config.name}/end-to-end",
        "problem": {"kind": "mri", "image_size": int(d.image_size),
                    "mask": {"pattern": pc.pattern, "rate": float(ts.rate),
                             "seed": int(pc.mask_seed)},
                    "noise_sigma": float(ts.noise)},
        "data": {"dataset": d.dataset, "resize": "area", "val_size": int(d.n_val)},
        "model": {"name": "postprocess-cnn", "channels": 1, "width": int(e.width),
                  "depth": int(e.depth), "init": "adjoint"},
        "train": {"steps": steps, "batch_size": int(e.batch_size), "lr": lr,
                  "lr_schedule": "cosine-torch", "lr_min": lr * 0.05,
                  "seed": int(config.seed) + 18, "checkpoint_every": min(100, steps),
                  "device": str(config.device), "num_threads": int(config.num_threads)},
    }).to_dict()


def train_end_to_end(config: GenerativeConfig, train_images, device,
                     progress: Progress | None = None,
                     run_dir: str | os.PathLike | None = None):
    """The end-to-end network of ``config`` (module docstring) trained on ``train_images``
    on ``device``; ``progress(step, total, scalars)`` after every step (stage
    ``end-to-end``). With ``run_dir`` the network leaves a run directory there (resumed when
    it exists). Returns the network in eval mode."""
    from spinv.generative.train import SliceSampler
    from spinv.learned.postprocess import PostProcessCNN
    from spinv.problems import Problem
    from spinv.training.config import parse_config
    from spinv.training.engine import FitOptions, fit
    from spinv.training.objectives_generative import RealPartSquaredError
    from spinv.training.rundir import is_run, open_run
    from spinv.training.sources_images import AugmentedSlices

    run_config = end_to_end_config(config)
    e, t = config.end_to_end, run_config["train"]
    problem = Problem.from_config(parse_config(run_config).problem).to(device)
    torch.manual_seed(config.seed + 17)
    net = PostProcessCNN(problem.operator, channels=1, width=int(e.width), depth=int(e.depth),
                         init="adjoint").to(device)
    sampler = SliceSampler(train_images, config.data.image_size, zoom=config.data.zoom,
                           flip=config.data.flip).to(device)
    source = AugmentedSlices(sampler, t["batch_size"], t["seed"], problem=problem)
    options = FitOptions(steps=t["steps"], lr=t["lr"], schedule="cosine-torch",
                         lr_min=t["lr_min"], trainable=("net.",),
                         checkpoint_every=t["checkpoint_every"], seed=t["seed"])
    fit_kw = dict(objective=RealPartSquaredError(), progress=staged(progress, "end-to-end"))
    if run_dir is None:
        fit(net, source, options, **fit_kw)
    else:
        with open_run(run_dir, run_config, resume=is_run(run_dir),
                      problem=problem.to_dict()) as run:
            fit(net, source, options, run=run, **fit_kw)
    return net.eval()
