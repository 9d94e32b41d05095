"""`spinv sampling experiment NAME CONFIG --out DIR` runs a chapter-1 experiment end to end."""

from __future__ import annotations

import json

import yaml

from spinv.cli import main


def test_beta_sweep_experiment_command(tmp_path, capsys):
    config = {
        "base": {"data": "brain-t1", "size": 16, "n_train": 2, "n_test": 3, "noise": 0.02,
                 "regulariser": "tv", "maxiter": 3, "alpha_maxiter": 3, "baselines": [],
                 "seed": 0},
        "betas": [1.0e-2, 1.0e-1],
    }
    path = tmp_path / "beta.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["sampling", "experiment", "beta-sweep", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["beta"] for r in sorted(rows, key=lambda r: r["beta"])] == [1.0e-2, 1.0e-1]
    assert all(0 < r["sampling_rate"] <= 1 and 0 <= r["ssim"] <= 1 for r in rows)
    assert (out / "beta_sweep.png").stat().st_size > 0


def test_unknown_experiment_and_key(tmp_path, capsys):
    assert main(["sampling", "experiment", "nope", "x.yaml", "--out", str(tmp_path)]) == 2
    assert "beta-sweep" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: {}\nbetaz: [1]\n")
    assert main(["sampling", "experiment", "beta-sweep", str(bad), "--out", str(tmp_path)]) == 2
    assert "betaz" in capsys.readouterr().err
