"""The headline job (`spinv demo`) end to end at toy size: every method evaluated on the same
upright and rotated held-out slices, outputs written atomically."""

from __future__ import annotations

import json
import math

from spinv.cli import main


def test_demo_end_to_end_at_toy_size(tmp_path, capsys):
    from spinv.experiments.demo import METHOD_ORDER, DemoSettings, run_demo

    out = tmp_path / "demo"
    settings = DemoSettings(n_train=2, steps=3, image_size=16, n_test=2, width=8, iterations=2,
                            tv_iterations=20, bf16=False)
    results = run_demo(out, settings)
    assert set(results["metrics"]) == set(METHOD_ORDER)
    for name in METHOD_ORDER:
        for split in ("upright", "rotated"):
            m = results["metrics"][name][split]
            assert len(m["psnr_roi"]) == 2
            assert all(math.isfinite(v) for v in m["psnr_roi"] + m["ssim_roi"])
    # TV's alpha comes from the tuning grid's range (logspace(-3, 0))
    assert 1e-3 <= results["settings"]["tv_alpha"] <= 1.0
    assert json.loads((out / "results.json").read_text())["settings"]["n_train"] == 2
    report = (out / "report.md").read_text()
    for name in METHOD_ORDER:
        assert f"| {name} |" in report
    for png in ("examples.png", "psnr_violin.png", "ssim_violin.png", "training_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    # both learned models leave a run with the losses the results report
    from spinv.training.logging import read_log

    for label, name in (("ordinary LPG", "ordinary"), ("equivariant LPG (C4)", "C4")):
        log = read_log(out / "models" / name / "log.jsonl")
        assert [r["loss"] for r in log if "loss" in r] == results["training"][label]["losses"]


def test_demo_rejects_a_bad_size_in_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "steps" in err


def test_demo_evaluates_shipped_models_without_training(tmp_path):
    from spinv.experiments.demo import DemoSettings, run_demo
    from spinv.training import parse_config, train

    cfg = {"problem": {"kind": "ct", "image_size": 16, "n_angles": 50, "upsample": 2},
           "data": {"dataset": "ct-head", "n_train": 2, "val_size": 1, "resize": "area"},
           "model": {"name": "lpg", "group": "C4", "width": 8, "iterations": 2},
           "train": {"steps": 1, "batch_size": 1, "checkpoint_every": 1, "num_threads": 1,
                     "device": "cpu"}}
    train(parse_config(cfg), tmp_path / "run", progress=False)
    settings = DemoSettings(n_train=2, image_size=16, n_test=2, tv_iterations=20,
                            shipped=(str(tmp_path / "run"),))
    results = run_demo(tmp_path / "demo", settings)
    assert results["order"] == ["FBP", "TV", "C4 LPG (shipped)"]
    assert not (tmp_path / "demo" / "models").exists()  # nothing was trained
    assert results["training"]["C4 LPG (shipped)"]["losses"]  # the run's learning curve
    assert "| C4 LPG (shipped) |" in (tmp_path / "demo" / "report.md").read_text()
