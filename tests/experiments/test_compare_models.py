"""`spinv experiment run equivariance compare-models`: trained runs against FBP and TV under
the chapter-2 protocol; a model of another problem is refused."""

import json

import pytest

from spinv.cli import main
from spinv.training import parse_config, train


@pytest.fixture(scope="module")
def lpg_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    cfg = {"problem": {"kind": "ct", "image_size": 16, "n_angles": 8, "upsample": 2},
           "data": {"dataset": "ct-head", "n_train": 4, "val_size": 2, "resize": "area"},
           "model": {"name": "lpg", "group": "C4", "width": 8, "iterations": 2},
           "train": {"steps": 2, "batch_size": 2, "checkpoint_every": 2, "num_threads": 1,
                     "device": "cpu"}}
    train(parse_config(cfg), d / "c4", progress=False)
    return d / "c4"


def _config(tmp_path, run, n_angles=8):
    path = tmp_path / "cmp.yaml"
    path.write_text(
        f"small:\n  image_size: 16\n  n_angles: {n_angles}\n  n_test: 2\n  threads: 1\n"
        f"  tune_images: 2\n  tune_iterations: 20\n  alpha_grid: [0.01, 0.1]\n"
        f"  golden_iterations: 0\n  models: [{run}]\n")
    return path


def test_models_and_baselines_share_the_held_out_slab(lpg_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["experiment", "run", "equivariance", "compare-models",
                 str(_config(tmp_path, lpg_run)), "--out", str(out), "--quiet"]) == 0
    payload = json.loads((out / "results.json").read_text())
    assert list(payload["methods"]) == ["FBP", "TV", "c4"]
    for entry in payload["methods"].values():
        for split in ("upright", "rotated"):
            assert len(entry[split]["psnr_roi"]) == 2
            s = entry[split]["summary"]["psnr_roi"]
            assert s["mean"] == pytest.approx(sum(entry[split]["psnr_roi"]) / 2)
    assert payload["methods"]["c4"]["model"] == "lpg"
    assert "| c4 | rotated |" in (out / "results.md").read_text()


def test_a_model_of_another_problem_is_refused(lpg_run, tmp_path, capsys):
    code = main(["experiment", "run", "equivariance", "compare-models",
                 str(_config(tmp_path, lpg_run, n_angles=10)), "--out", str(tmp_path / "o"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "n_angles 8 vs 10" in err and err.count("\n") == 1


def test_zoomed_held_out_slices_are_a_smaller_field_of_view(lpg_run, tmp_path):
    cfg = _config(tmp_path, lpg_run)
    cfg.write_text(cfg.read_text() + "  zoom: 0.5\n  eval_split: val\n")
    assert main(["experiment", "run", "equivariance", "compare-models", str(cfg), "--out",
                 str(tmp_path / "z"), "--quiet"]) == 0
    payload = json.loads((tmp_path / "z" / "results.json").read_text())
    assert payload["settings"]["zoom"] == 0.5 and "shrunk by 0.5" in (
        tmp_path / "z" / "results.md").read_text()
