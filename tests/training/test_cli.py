"""``spinv train/evaluate/report``: kill-and-resume is bit-identical, outputs, error lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from spinv.cli import main
from spinv.training.checkpoint import load_checkpoint

from .conftest import tiny_dict


def _spinv(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "spinv.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(*args: str) -> subprocess.CompletedProcess:
    p = _spinv(*args)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def _weights(run: Path) -> tuple[dict, int]:
    state, meta = load_checkpoint(run)
    return state, meta["step"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted run of the tiny config (30 steps, checkpoints every 2), in-process."""
    root = tmp_path_factory.mktemp("cli")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_dict(train={"steps": 30, "checkpoint_every": 2})))
    assert main(["train", str(cfg), "--out", str(root / "full")]) == 0
    return cfg, root


def _assert_same_weights(a_run: Path, b_run: Path, step: int) -> None:
    a, sa = _weights(a_run)
    b, sb = _weights(b_run)
    assert sa == sb == step
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_stop_and_resume_is_bit_identical(reference_run):
    """A separate ``spinv train --max-steps 11`` process, then ``--resume`` to the end."""
    cfg, root = reference_run
    out = root / "stopped"
    _run("train", str(cfg), "--out", str(out), "--max-steps", "11")
    assert _weights(out)[1] == 11  # the final partial step is checkpointed too
    assert main(["train", str(cfg), "--out", str(out), "--resume"]) == 0
    _assert_same_weights(root / "full", out, 30)


def test_kill_and_resume_is_bit_identical(reference_run):
    """SIGKILL a training process once its first checkpoint exists, then resume."""
    cfg, root = reference_run
    out = root / "killed"
    p = _spinv("train", str(cfg), "--out", str(out))
    deadline = time.monotonic() + 120
    while not (out / "latest.json").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)  # wherever it is: mid-step, mid-checkpoint, ...
    _, err = p.communicate(timeout=60)
    assert p.returncode in (0, -signal.SIGKILL), err  # killed, or (rarely) already done
    assert (out / "latest.json").exists()  # the killed process had checkpointed
    assert main(["train", str(cfg), "--out", str(out), "--resume"]) == 0
    _assert_same_weights(root / "full", out, 30)


def test_evaluate_and_report(reference_run, tmp_path, capsys):
    _, root = reference_run
    ev = tmp_path / "eval"
    assert main(["evaluate", str(root / "full"), "--data", "natural", "--out", str(ev),
                 "--n-images", "3", "--examples", "2"]) == 0
    m = json.loads((ev / "metrics.json").read_text())
    assert m["n_images"] == 3 and len(m["per_image"]) == 3
    ps = [r["psnr"] for r in m["per_image"]]
    assert m["summary"]["psnr"]["mean"] == pytest.approx(sum(ps) / 3, rel=1e-6)
    assert (ev / "examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # ROI-masked metrics differ from the full-image ones; rotation is applied
    ev2 = tmp_path / "eval-roi"
    assert main(["evaluate", str(root / "full"), "--data", "natural", "--out", str(ev2),
                 "--n-images", "3", "--roi", "--rotate", "30"]) == 0
    m2 = json.loads((ev2 / "metrics.json").read_text())
    assert m2["roi"] and m2["rotate"] == 30.0
    assert m2["summary"]["psnr"]["mean"] != m["summary"]["psnr"]["mean"]
    # a user's own folder of images
    import numpy as np

    from spinv.data.io import save_image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(2):
        save_image(folder / f"s{i}.npy", np.random.default_rng(i).random((24, 24)))
    ev3 = tmp_path / "eval-folder"
    assert main(["evaluate", str(root / "full" / "latest.json"), "--data", str(folder),
                 "--out", str(ev3)]) == 0
    m3 = json.loads((ev3 / "metrics.json").read_text())
    assert m3["n_images"] == 2 and m3["dataset"] == str(folder)
    # without --data: the training dataset and the config's eval section
    ev4 = tmp_path / "eval-default"
    assert main(["evaluate", str(root / "full"), "--out", str(ev4), "--n-images", "1"]) == 0
    m4 = json.loads((ev4 / "metrics.json").read_text())
    assert (m4["dataset"], m4["split"], m4["roi"]) == ("natural", "test", False)
    rep = tmp_path / "report"
    assert main(["report", str(root / "full"), str(ev), "--out", str(rep)]) == 0
    md = (rep / "report.md").read_text()
    assert "| run |" in md and f"{m['summary']['psnr']['mean']:.2f}" in md
    assert (rep / "report.html").read_text().startswith("<!DOCTYPE html>")
    for name in ("training_curves.png", "psnr_violin.png", "ssim_violin.png"):
        assert (rep / "figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_bad_input_gives_one_error_line_and_exit_2(tmp_path, capsys, tiny_yaml):
    for cmd in ("train", "evaluate", "report"):
        assert main([cmd, "--help"]) == 0
        assert "--out" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: -1\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.lr" in err[0] and err[0].startswith("error:")
    assert main(["evaluate", str(tmp_path / "none"), "--data", "natural",
                 "--out", str(tmp_path / "e")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg = tiny_yaml(model={"name": "no-such-model"})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown model 'no-such-model'; available:" in capsys.readouterr().err
    ok = tiny_yaml()
    assert main(["train", str(ok), "--out", str(tmp_path / "r3"), "--set", "data.n_train=0"]) == 2
    assert "'data.n_train': value 0 is out of range" in capsys.readouterr().err
