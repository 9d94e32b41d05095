"""A signal during training ends the run cleanly: checkpoint at the step reached, summary
marked interrupted, exit code 128 + signal, and the resumed run is bit-identical to an
uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from spinv.interruption import TrainingInterrupted
from spinv.training.checkpoint import load_checkpoint
from spinv.training.engine import FitOptions, fit
from spinv.training.rundir import open_run
from spinv.training.sources import FixedPairs

from .test_engine import Net, _pairs

CFG = {"model": {"name": "net"}, "train": {"steps": 9}}
OPTS = FitOptions(steps=9, lr=5e-3, schedule="cosine", lr_min=1e-4, checkpoint_every=4)


def _run(path, resume=False, hooks=()):
    x, y = _pairs()
    with open_run(path, CFG, resume=resume) as rd:
        return fit(Net(), FixedPairs(x, y, 3, seed=11), OPTS, run=rd, hooks=hooks)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_current_step_and_resume_is_bit_identical(tmp_path, signum):
    full = _run(tmp_path / "full")

    def send_at_step_3(model, step):
        if step == 3:
            os.kill(os.getpid(), signum)

    with pytest.raises(TrainingInterrupted, match="step 3/9") as caught:
        _run(tmp_path / "part", hooks=(send_at_step_3,))
    assert caught.value.exit_code == 128 + signum and caught.value.step == 3
    assert load_checkpoint(tmp_path / "part")[1]["step"] == 3  # not a checkpoint_every multiple
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["interrupted"] == signal.Signals(signum).name and summary["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    resumed = _run(tmp_path / "part", resume=True)
    a, _ = load_checkpoint(tmp_path / "full")
    b, meta = load_checkpoint(tmp_path / "part")
    assert meta["step"] == 9 and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses == full.losses


def test_spinv_train_stops_on_sigterm_with_exit_143_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spinv.cli", "train", "configs/smoke-ct.yaml", "--out", str(out),
           "--set", "train.steps=400", "--set", "train.checkpoint_every=1000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and log.read_text().count("\n") >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the training finished before the signal arrived")
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "--resume" in err
    step = json.loads((out / "summary.json").read_text())["step"]
    assert 3 <= step < 400 and load_checkpoint(out)[1]["step"] == step
