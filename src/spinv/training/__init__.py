"""Training: the one loop that optimises the weights of every learned model of spinv.

- :mod:`~spinv.training.engine`: :func:`fit` (Adam, schedules, clipping, bf16, hooks,
  trainable subsets, checkpoints, bit-identical resume) and :class:`FitOptions`;
- :mod:`~spinv.training.sources`: data sources (``batch(step)``): :class:`FixedPairs`, and the
  on-the-fly simulation :class:`~spinv.training.data.TrainingData`;
- :mod:`~spinv.training.objectives`: objectives (``objective(model, batch) -> (loss, scalars)``);
- :mod:`~spinv.training.schedules`: learning-rate schedules as pure functions of the step;
- :mod:`~spinv.training.rundir`: run directories (marker, lock, config, provenance);
- :mod:`~spinv.training.models` / :mod:`~spinv.training.registry`: the model catalogue and
  ``register_model`` for user models;
- :mod:`~spinv.training.config` and :mod:`~spinv.training.loop`: YAML experiments
  (``spinv train``), with DistributedDataParallel (:mod:`~spinv.training.distributed`);
- :mod:`~spinv.training.checkpoint`: safetensors + JSON checkpoints, written atomically;
- :mod:`~spinv.training.evaluate`: PSNR/SSIM of trained models on held-out images;
- :mod:`~spinv.training.logging`: JSONL log, progress bar, optional TensorBoard.
"""

from spinv.training.checkpoint import load_checkpoint, load_model, save_checkpoint
from spinv.training.config import ExperimentConfig, load_config, parse_config
from spinv.training.engine import (
    FitOptions,
    FitResult,
    NonFiniteLossError,
    TrainingInterrupted,
    fit,
)
from spinv.training.objectives import MeanSquaredError
from spinv.training.registry import available_models, build_model, register_model
from spinv.training.rundir import NotARunError, RunLockedError, open_run
from spinv.training.sources import FixedPairs

__all__ = [
    "ExperimentConfig",
    "FitOptions",
    "FitResult",
    "FixedPairs",
    "MeanSquaredError",
    "NonFiniteLossError",
    "NotARunError",
    "RunLockedError",
    "TrainingInterrupted",
    "available_models",
    "build_model",
    "fit",
    "load_checkpoint",
    "load_config",
    "load_model",
    "open_run",
    "parse_config",
    "register_model",
    "save_checkpoint",
    "train",
]


def train(*args, **kwargs):
    """:func:`spinv.training.loop.train` (imported lazily)."""
    from spinv.training.loop import train as _train

    return _train(*args, **kwargs)
