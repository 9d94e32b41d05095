"""Shared fixtures of the training tests: tiny configs that train in well under a second."""

from __future__ import annotations

import pytest
import yaml

TINY = {
    "name": "tiny",
    "problem": {"kind": "denoise", "image_size": 16, "noise_sigma": 0.1},
    "data": {"dataset": "natural", "n_train": 6, "val_size": 2},
    "model": {"name": "postprocess-cnn", "width": 4, "depth": 3, "zero_init": False},
    "train": {"steps": 8, "batch_size": 4, "lr": 1e-2, "lr_schedule": "cosine", "seed": 3,
              "checkpoint_every": 3, "log_every": 2, "device": "cpu", "num_threads": 1},
    "eval": {"n_examples": 2},
}


def tiny_dict(**sections) -> dict:
    """A copy of :data:`TINY` with some sections updated (``train={"steps": 4}``)."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    for k, v in sections.items():
        d[k].update(v)
    return d


@pytest.fixture
def tiny_yaml(tmp_path):
    """Write a tiny config (optionally modified) to a YAML file and return its path."""

    def make(**sections):
        p = tmp_path / "tiny.yaml"
        p.write_text(yaml.safe_dump(tiny_dict(**sections)))
        return p

    return make
