"""Training and experiment infrastructure (issue 4).

- :mod:`~spinv.training.config`: YAML experiment files validated into typed dataclasses;
- :mod:`~spinv.training.registry`: models by name (``register_model``, ``build_model``);
- :mod:`~spinv.training.data`: on-the-fly simulation of measurements (CT, MRI, denoising);
- :mod:`~spinv.training.loop`: Adam on the empirical risk of Section 2.5.2 of the thesis,
  with resume and DistributedDataParallel (:mod:`~spinv.training.distributed`);
- :mod:`~spinv.training.checkpoint`: safetensors + JSON checkpoints, written atomically;
- :mod:`~spinv.training.evaluate`: PSNR/SSIM of trained models on held-out images;
- :mod:`~spinv.training.logging`: JSONL log, progress bar, optional TensorBoard.
"""

from spinv.training.checkpoint import load_checkpoint, load_model, save_checkpoint
from spinv.training.config import ExperimentConfig, load_config, parse_config
from spinv.training.registry import available_models, build_model, register_model

__all__ = [
    "ExperimentConfig",
    "available_models",
    "build_model",
    "load_checkpoint",
    "load_config",
    "load_model",
    "parse_config",
    "register_model",
    "save_checkpoint",
    "train",
]


def train(*args, **kwargs):
    """:func:`spinv.training.loop.train` (imported lazily)."""
    from spinv.training.loop import train as _train

    return _train(*args, **kwargs)
