"""Fan-beam CT through spinv.training (issue 17.3): the ``problem.fan`` config section, the
smoke config ``configs/smoke-ct-fan.yaml`` training LPD and LPG a few steps on the fan-beam
operator, and parallel-beam configs serialising exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spinv.operators.ct_fan import FanBeamCT
from spinv.training.config import load_config, parse_config
from spinv.training.loop import train

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke-ct-fan.yaml"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))


def test_fan_section_parses_and_parallel_dicts_are_unchanged():
    cfg = parse_config({"problem": {"kind": "ct", "image_size": 16, "fan": {}}})
    assert cfg.problem.fan.detector_type == "equiangular"
    assert parse_config(cfg.to_dict()) == cfg
    assert "fan" not in parse_config({"problem": {"kind": "ct"}}).to_dict()["problem"]
    with pytest.raises(ValueError, match="problem.fan.detector_type"):
        parse_config({"problem": {"kind": "ct", "fan": {"detector_type": "curved"}}})
    with pytest.raises(ValueError, match="problem.fan.source_distance"):
        parse_config({"problem": {"kind": "ct", "fan": {"source_distance": -1}}})


@pytest.mark.parametrize("model", [{"name": "lpd", "width": 4, "iterations": 2},
                                   {"name": "lpg", "width": 4, "iterations": 2}])
def test_smoke_config_trains_learned_iterations_on_the_fan_operator(tmp_path, model):
    from spinv.training.data import make_operator
    from spinv.training.registry import build_model

    cfg = load_config(SMOKE)
    d = cfg.to_dict()
    d["model"] = model
    d["train"].update(steps=4, checkpoint_every=2, log_every=2)
    d["data"].update(n_train=4, val_size=2)
    cfg = parse_config(d)
    operator = make_operator(cfg.problem)
    assert isinstance(operator, FanBeamCT) and operator.n_angles == 30
    net = build_model(cfg.model.name, cfg.model.options, operator)
    assert any(isinstance(m, FanBeamCT) for m in net.modules())  # A inside the iteration
    res = train(cfg, tmp_path / "run")
    assert res.step == 4
    record = json.loads((tmp_path / "run" / "problem.json").read_text())
    assert record["geometry"]["fan"]["detector_type"] == "equiangular"
    losses = [json.loads(line)["loss"] for line in
              (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
