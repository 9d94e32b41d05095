"""A chapter-2 experiment killed mid-training resumes to the identical result, and its model
runs are ordinary runs: ``load_model`` rebuilds the very model the experiment evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spinv.cli import main
from spinv.experiments.equivariance import SWEEP_N
from spinv.experiments.equivariance.sweeps import run_sweep_n
from spinv.training.checkpoint import load_checkpoint
from spinv.training.sources import FixedPairs

from .conftest import without_keys

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "equivariance-smoke.yaml"
TIMING = {"train_time_s", "wall_time_s"}


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def _config(**changes):
    import yaml

    raw = yaml.safe_load(SMOKE.read_text())
    raw["small"].update(n_train_values=[2], steps=6, baselines=False, checkpoint_every=1,
                        **changes)
    return SWEEP_N.load(raw, "small")


def _strip(obj):
    return without_keys(obj, TIMING)


def test_killed_experiment_resumes_to_the_identical_result(tmp_path, monkeypatch):
    cfg = _config()
    full = run_sweep_n(cfg, tmp_path / "full")

    real_batch, calls = FixedPairs.batch, []

    def dying_batch(self, step):
        calls.append(step)
        if len(calls) == cfg.steps + 4:  # the second model (C4), at its step 4
            raise Killed
        return real_batch(self, step)

    monkeypatch.setattr(FixedPairs, "batch", dying_batch)
    with pytest.raises(Killed):
        run_sweep_n(cfg, tmp_path / "part")
    monkeypatch.setattr(FixedPairs, "batch", real_batch)
    assert load_checkpoint(tmp_path / "part" / "models" / "N2-C4")[1]["step"] == 3
    assert not (tmp_path / "part" / "results.json").exists()
    # without --resume the existing runs are not overwritten
    with pytest.raises(ValueError, match="already holds a training run; pass --resume"):
        run_sweep_n(cfg, tmp_path / "part")
    resumed = run_sweep_n(cfg, tmp_path / "part", resume=True)
    assert _strip(resumed) == _strip(full)
    for name in ("N2-ordinary", "N2-C4"):
        a, meta_a = load_checkpoint(tmp_path / "full" / "models" / name)
        b, meta_b = load_checkpoint(tmp_path / "part" / "models" / name)
        assert meta_a["step"] == meta_b["step"] == 6
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_experiment_runs_are_runs_that_evaluate_and_report_accept(tmp_path, capsys):
    from spinv.experiments.equivariance.data import DataSpec, prepare_data
    from spinv.experiments.equivariance.evaluation import reconstruct_all
    from spinv.experiments.equivariance.training import LPGSettings, train_lpg
    from spinv.training.checkpoint import load_model

    data = prepare_data(DataSpec("mri", image_size=16), 2, 2, seed=1)
    settings = LPGSettings(steps=2, width=8, iterations=2, memory=2, seed=1)
    model, losses, _ = train_lpg(data, "C4", settings, tmp_path / "run")
    loaded, cfg = load_model(tmp_path / "run")
    assert cfg.model.name == "lpg" and cfg.problem.kind == "mri"
    # same operator (the mask recipe reproduces the experiment's mask) and same weights
    assert torch.equal(loaded.operator.mask, data.operator.mask)
    assert torch.equal(reconstruct_all(loaded, data.y_test), reconstruct_all(model, data.y_test))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["final_loss"] == losses[-1]
    assert main(["evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "ev")]) == 0
    assert main(["report", str(tmp_path / "run"), str(tmp_path / "ev"),
                 "--out", str(tmp_path / "rep")]) == 0
    assert "lpg" in (tmp_path / "rep" / "report.md").read_text()
