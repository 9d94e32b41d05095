"""Checkpoints: exact round trip, atomic layout, pruning, corruption detection, no pickle."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from spinv.training.checkpoint import (
    LATEST,
    load_checkpoint,
    load_model,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from spinv.training.config import parse_config
from spinv.training.data import make_operator
from spinv.training.registry import build_model


def _trained(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 1, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.rand(2, 1, 8, 8)).pow(2).mean().backward()
        opt.step()
    return model, opt


def test_roundtrip_restores_model_optimizer_and_rng(tmp_path):
    model, opt = _trained()
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    save_checkpoint(tmp_path, model, opt, step=3, config={"a": 1}, extra={"note": "x"})
    expect = (random.random(), float(np.random.rand()), float(torch.rand(())))
    ck = read_checkpoint(tmp_path)
    assert ck.metadata["step"] == 3 and ck.metadata["config"] == {"a": 1}
    assert ck.metadata["extra"] == {"note": "x"}
    for k, v in model.state_dict().items():
        assert torch.equal(ck.model_state[k], v)
    # the optimiser continues exactly as the original one
    model2, opt2 = _trained(seed=1)
    model2.load_state_dict(ck.model_state)
    opt2.load_state_dict(ck.optimizer_state)
    x = torch.rand(2, 1, 8, 8)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    restore_rng_state(ck.rng_tensors, ck.metadata["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expect


def test_layout_latest_pointer_and_pruning(tmp_path):
    model, opt = _trained()
    (tmp_path / ".ckpt-000009.abc.tmp").mkdir()  # left behind by a killed writer
    (tmp_path / ".latest.json.xyz.tmp").write_text("{")
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, model, opt, step=step, config={}, keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-000002", "ckpt-000003", LATEST]  # no temporaries left
    assert json.loads((tmp_path / LATEST).read_text())["checkpoint"] == "ckpt-000003"
    assert load_checkpoint(tmp_path / "ckpt-000002")[1]["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt-000003" / "weights.safetensors")[1]["step"] == 3
    save_checkpoint(tmp_path, model, opt, step=3, config={"again": True})  # re-save a step
    assert load_checkpoint(tmp_path)[1]["config"] == {"again": True}


def test_complex_parameters_roundtrip(tmp_path):
    model = nn.Module()
    model.w = nn.Parameter(torch.randn(3, dtype=torch.complex64))
    save_checkpoint(tmp_path, model, None, step=0, config={})
    state, _ = load_checkpoint(tmp_path)
    assert state["w"].dtype == torch.complex64 and torch.equal(state["w"], model.w.detach())


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage_meta", "missing_weights",
                                    "bad_pointer"])
def test_corrupt_checkpoints_raise_clear_errors(tmp_path, damage):
    model, opt = _trained()
    ck = save_checkpoint(tmp_path, model, opt, step=1, config={})
    weights, meta = ck / "weights.safetensors", ck / "meta.json"
    if damage == "truncate":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
        err, match = ValueError, "truncated.*weights.safetensors"
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
        err, match = ValueError, "corrupt or truncated.*weights.safetensors"
    elif damage == "garbage_meta":
        meta.write_text("{not json")
        err, match = ValueError, "corrupt checkpoint metadata.*meta.json"
    elif damage == "missing_weights":
        weights.unlink()
        err, match = FileNotFoundError, "weights.safetensors"
    else:
        (tmp_path / LATEST).write_text('{"checkpoint": "../../etc"}')
        err, match = ValueError, "latest.json"
    with pytest.raises(err, match=match):
        load_checkpoint(tmp_path)


def test_truncated_without_recorded_hash_is_refused(tmp_path):
    model, opt = _trained()
    ck = save_checkpoint(tmp_path, model, opt, step=1, config={})
    meta = json.loads((ck / "meta.json").read_text())
    del meta["weights_sha256"]
    (ck / "meta.json").write_text(json.dumps(meta))
    data = (ck / "weights.safetensors").read_bytes()
    (ck / "weights.safetensors").write_bytes(data[:100])
    with pytest.raises(ValueError, match="meta.json.*lacks the field 'weights_sha256'"):
        load_checkpoint(ck)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, step=1, config={})

    def boom(*a, **k):
        raise AssertionError("torch.load / pickle must not be used")

    monkeypatch.setattr(torch, "load", boom)
    import pickle

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    state, meta = load_checkpoint(tmp_path)
    assert meta["step"] == 1 and set(state) == set(model.state_dict())


def test_load_model_rebuilds_from_config(tmp_path):
    cfg = parse_config({"problem": {"kind": "denoise", "image_size": 16},
                        "model": {"name": "postprocess-cnn", "width": 4, "zero_init": False}})
    torch.manual_seed(0)
    model = build_model("postprocess-cnn", cfg.model.options, make_operator(cfg.problem))
    save_checkpoint(tmp_path, model, None, step=5, config=cfg)
    loaded, cfg2 = load_model(tmp_path)
    assert cfg2 == cfg and not loaded.training
    y = torch.rand(1, 1, 16, 16)
    assert torch.equal(loaded(y), model(y))


def test_bad_arguments(tmp_path):
    model, opt = _trained()
    with pytest.raises(ValueError, match="step=-1"):
        save_checkpoint(tmp_path, model, opt, step=-1, config={})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
