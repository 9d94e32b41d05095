"""Smoke tests of `spinv generative train | reconstruct | experiment` (seconds-long config)."""

import json
from pathlib import Path

import numpy as np
import pytest

from spinv.cli import main

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "generative-smoke.yaml"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "models"
    assert main(["generative", "train", str(SMOKE), "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_one_run_directory_per_covariance(models):
    for kind in ("identity", "diagonal", "lowrank", "precision"):
        for name in ("latest.json", "config.yaml", "log.jsonl", "summary.json",
                     "provenance.json", "spinv-run.json"):
            assert (models / f"vae-{kind}" / name).is_file(), (kind, name)
    # training again into the same folder reloads the finished runs (no new steps)
    before = (models / "vae-precision" / "log.jsonl").read_text()
    assert main(["generative", "train", str(SMOKE), "--out", str(models), "--quiet"]) == 0
    assert (models / "vae-precision" / "log.jsonl").read_text() == before
    summary = json.loads((models / "vae-precision" / "summary.json").read_text())
    assert summary["sessions"] == 2 and summary["step"] == 10


def test_reconstruct_writes_images_and_metrics(models, tmp_path):
    out = tmp_path / "rec"
    code = main(["generative", "reconstruct", "--models", str(models), "--out", str(out),
                 "--regulariser", "covariance", "--covariance", "precision", "--lam", "1",
                 "--rate", "0.3", "--noise", "0.02", "--n-images", "2", "--iterations", "2"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["psnr"]) == 2 and all(np.isfinite(m["psnr"]))
    with np.load(out / "recon.npz") as z:
        assert z["reconstruction"].shape == z["truth"].shape == (2, 16, 16)


def test_experiment_reusing_models(models, tmp_path):
    out = tmp_path / "exp"
    code = main(["generative", "experiment", "--config", str(SMOKE), "--out", str(out),
                 "--models", str(models), "--quiet"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["table"]) >= {"zero-filled", "tv", "range", "mean", "precision", "end-to-end"}
    for method, rows in res["table"].items():
        assert len(rows) == 2, method  # two sampling rates x one noise level
        assert all(np.isfinite(r["psnr_mean"]) for r in rows.values())
    for f in ("results.md", "psnr_vs_rate.png", "covariance.png"):
        assert (out / f).is_file()


def test_bad_input_gives_one_line_error(models, tmp_path, capsys):
    code = main(["generative", "reconstruct", "--models", str(models), "--out",
                 str(tmp_path / "x"), "--rate", "1.5"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "rate" in err
    assert main(["generative", "train", str(tmp_path / "missing.yaml"), "--out",
                 str(tmp_path / "m")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {latent: 3}\n")
    assert main(["generative", "train", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "model.latent" in capsys.readouterr().err
