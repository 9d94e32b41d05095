"""Training loop: learning happens, in-process resume is bit-identical, guards and hooks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from spinv.training.checkpoint import load_checkpoint
from spinv.training.config import parse_config
from spinv.training.loop import learning_rate, train
from spinv.training.registry import register_model, unregister_model

from .conftest import tiny_dict


def test_training_reduces_validation_loss(tmp_path):
    cfg = parse_config(tiny_dict(train={"steps": 30, "checkpoint_every": 30, "lr": 5e-3}))
    before = train(cfg, tmp_path / "a", max_steps=0)
    assert before.step == 0
    res = train(cfg, tmp_path / "b")
    assert res.step == 30
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 31))
    from spinv.training.data import TrainingData, make_operator
    from spinv.training.loop import validate
    from spinv.training.registry import build_model

    torch.manual_seed(cfg.train.seed)
    op = make_operator(cfg.problem)
    init = build_model(cfg.model.name, cfg.model.options, op)
    val = TrainingData(cfg, op).validation()
    assert res.validation["val_loss"] < 0.8 * validate(init, *val)["val_loss"]


PROBLEMS = {
    "denoise": {},
    "mri-rotated": {"problem": {"kind": "mri", "noise_sigma": 0.02,
                                "mask": {"pattern": "random", "rate": 0.4}},
                    "data": {"rotate_train": True}},
    "ct-poisson": {"problem": {"kind": "ct", "n_angles": 8, "photons": 1000.0}},
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_resume_in_process_is_bit_identical(tmp_path, monkeypatch, problem):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))
    cfg = parse_config(tiny_dict(train={"steps": 7, "checkpoint_every": 2},
                                 **PROBLEMS[problem]))
    train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "part", max_steps=4)
    assert load_checkpoint(tmp_path / "part")[1]["step"] == 4
    train(cfg, tmp_path / "part", resume=True)
    a, ma = load_checkpoint(tmp_path / "full")
    b, mb = load_checkpoint(tmp_path / "part")
    assert ma["step"] == mb["step"] == 7
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = (tmp_path / "full" / "log.jsonl").read_text().splitlines()
    lb = (tmp_path / "part" / "log.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k not in ("images_per_s", "elapsed")}
             for x in la]
    assert strip == [{k: v for k, v in json.loads(x).items()
                      if k not in ("images_per_s", "elapsed")} for x in lb]


def test_existing_run_requires_resume_and_same_config(tmp_path):
    cfg = parse_config(tiny_dict(train={"steps": 2, "checkpoint_every": 1}))
    train(cfg, tmp_path)
    with pytest.raises(ValueError, match="already holds a training run; pass --resume"):
        train(cfg, tmp_path)
    other = cfg.replace("train", lr=0.5)
    with pytest.raises(ValueError, match="config differs.*train"):
        train(other, tmp_path, resume=True)
    # more steps with the same config is a legitimate resume
    assert train(cfg.replace("train", steps=3), tmp_path, resume=True).step == 3


def test_enforce_constraints_is_called_after_each_step(tmp_path):
    calls = []

    class Clipped(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(0.5))

        def forward(self, y):
            return self.scale * y

        def enforce_constraints(self):
            calls.append(float(self.scale))
            self.scale.clamp_(max=0.625)

    register_model("test-clipped")(lambda cfg, op: Clipped())
    try:
        d = tiny_dict(train={"steps": 5, "lr": 0.5, "lr_schedule": "constant"})
        d["model"] = {"name": "test-clipped"}
        res = train(parse_config(d), tmp_path)
    finally:
        unregister_model("test-clipped")
    assert len(calls) == 5 and res.step == 5
    state, _ = load_checkpoint(tmp_path)
    assert float(state["scale"]) <= 0.625 < max(calls)


def test_learning_rate_schedules():
    assert learning_rate(1.0, "constant", 5, 10) == 1.0
    cos = [learning_rate(1.0, "cosine", k, 10) for k in range(11)]
    assert cos[0] == 1.0 and abs(cos[5] - 0.5) < 1e-12 and abs(cos[10]) < 1e-12
    assert all(a >= b for a, b in zip(cos, cos[1:], strict=False))
    assert [learning_rate(1.0, "step", k, 9) for k in (0, 3, 6)] == [1.0, 0.1, 0.1**2]
    with pytest.raises(ValueError, match="lr_schedule='linear'"):
        learning_rate(1.0, "linear", 0, 1)


def test_tensorboard_missing_gives_clear_message(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    cfg = parse_config(tiny_dict(train={"steps": 1, "tensorboard": True}))
    assert train(cfg, tmp_path).step == 1
    assert "pip install spinv[tensorboard]" in capsys.readouterr().err


def test_run_of_an_earlier_version_resumes(tmp_path):
    """A checkpoint whose config predates train.lr_min/precision (e.g. the long CT run) and a
    folder without the run marker resume: the saved config is completed with the defaults."""
    cfg = parse_config(tiny_dict(train={"steps": 4, "checkpoint_every": 2}))
    train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "old", max_steps=2)
    meta_path = tmp_path / "old" / "ckpt-000002" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for key in ("lr_min", "precision"):
        del meta["config"]["train"][key]
    meta_path.write_text(json.dumps(meta))
    for name in ("spinv-run.json", "problem.json", "provenance.json"):
        (tmp_path / "old" / name).unlink()
    assert train(cfg, tmp_path / "old", resume=True).step == 4
    a, _ = load_checkpoint(tmp_path / "full")
    b, _ = load_checkpoint(tmp_path / "old")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="train.lr_min"):
        parse_config(tiny_dict(train={"lr": 1e-3, "lr_min": 1e-2}))
