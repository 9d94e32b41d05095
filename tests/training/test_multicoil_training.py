"""Multi-coil MRI through spinv.training (issue 17.2): the ``problem.coils`` config section, the
smoke config ``configs/smoke-mri-multicoil.yaml`` training LPG (ordinary and C4) and C4 LPD a few
steps with the SENSE operator inside the iterations, and single-coil configs serialising as
before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spinv.operators.mri_multicoil import MultiCoilFourier
from spinv.training.config import load_config, parse_config
from spinv.training.loop import train

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke-mri-multicoil.yaml"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))


def test_coils_parse_and_single_coil_dicts_are_unchanged():
    cfg = parse_config({"problem": {"kind": "mri", "image_size": 16, "coils": 4}})
    assert cfg.problem.coils == 4 and parse_config(cfg.to_dict()) == cfg
    assert "coils" not in parse_config({"problem": {"kind": "mri"}}).to_dict()["problem"]
    with pytest.raises(ValueError, match="problem.coils"):
        parse_config({"problem": {"kind": "mri", "coils": 0}})


@pytest.mark.parametrize("model", [{"name": "lpg", "width": 4, "iterations": 2},
                                   {"name": "lpg", "width": 4, "iterations": 2, "group": "C4"},
                                   {"name": "lpd", "iterations": 2, "group": "C4"}])
def test_smoke_config_trains_learned_iterations_with_the_sense_operator(tmp_path, model):
    from spinv.training.data import make_operator
    from spinv.training.registry import build_model

    d = load_config(SMOKE).to_dict()
    d["model"] = model
    d["train"].update(steps=4, checkpoint_every=2, log_every=2)
    d["data"].update(n_train=4, val_size=2)
    cfg = parse_config(d)
    operator = make_operator(cfg.problem)
    assert isinstance(operator, MultiCoilFourier) and operator.n_coils == 4
    net = build_model(cfg.model.name, cfg.model.options, operator)
    assert any(isinstance(m, MultiCoilFourier) for m in net.modules())  # A inside the iteration
    assert train(cfg, tmp_path / "run").step == 4
    record = json.loads((tmp_path / "run" / "problem.json").read_text())
    assert record["coils"] == {"recipe": {"n_coils": 4, "radius": 1.5}}
    losses = [json.loads(line)["loss"] for line in
              (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
