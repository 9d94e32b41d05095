"""Resume edge cases are errors or warnings, never a silent no-op (issue 15, class 12)."""

import warnings

import pytest

from spinv.cli import main

CONFIG = """
problem: {kind: denoise, image_size: 16, noise_sigma: 0.1}
data: {dataset: natural, n_train: 4, val_size: 2}
model: {name: postprocess-cnn, width: 4, depth: 2}
train: {steps: 4, batch_size: 2, checkpoint_every: 2, lr_schedule: cosine, num_threads: 1,
        device: cpu}
"""


@pytest.fixture
def run(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    return cfg, tmp_path / "run"


def test_resuming_beyond_the_total_is_an_error_that_keeps_the_config(run, capsys):
    cfg, path = run
    saved = (path / "config.yaml").read_text()
    capsys.readouterr()
    code = main(["train", str(cfg), "--out", str(path), "--resume", "--set", "train.steps=2"])
    err = capsys.readouterr().err
    assert code == 2 and "already at step 4" in err and "train.steps=4" in err
    assert err.count("\n") == 1 and (path / "config.yaml").read_text() == saved


def test_extending_a_cosine_run_warns_that_the_schedule_changes(run, capsys):
    cfg, path = run
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["train", str(cfg), "--out", str(path), "--resume", "--set",
                     "train.steps=6", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "step 6/6" in out.out and "warning: --resume: train.steps changed from 4 to 6" in out.err


def test_resume_on_a_mistyped_folder_is_an_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    code = main(["train", str(cfg), "--out", str(tmp_path / "typo"), "--resume"])
    assert code == 2 and "not a spinv run" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
