"""Run directories (issue 15, items 1-2): one writer at a time, no foreign folder written."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from spinv.cli import main
from spinv.training.rundir import (
    MARKER,
    NotARunError,
    RunLockedError,
    config_differences,
    is_run,
    open_run,
)

from .conftest import tiny_dict


def test_second_writer_gets_one_clear_error_naming_the_directory(tmp_path):
    run = tmp_path / "run"
    with open_run(run, {"a": 1}):
        with pytest.raises(RunLockedError, match=r"'.*run' is being written by another process"):
            open_run(run, {"a": 1})
    with open_run(run, {"a": 1}):  # released on close
        pass


def test_lock_held_by_another_process(tmp_path):
    run = tmp_path / "run"
    code = (f"from spinv.training.rundir import open_run; import time; "
            f"r = open_run({str(run)!r}, {{}}); print('locked', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError):
            open_run(run, {})
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.05)
    with open_run(run, {}):  # the kernel dropped the dead writer's lock
        pass


def test_non_run_folder_is_refused_unless_forced(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.yaml").write_text("my own file\n")
    with pytest.raises(NotARunError, match="not a spinv run.*--force"):
        open_run(folder, {"a": 1})
    assert (folder / "config.yaml").read_text() == "my own file\n"
    assert not (folder / MARKER).exists()
    with open_run(folder, {"a": 1}, force=True):
        pass
    assert is_run(folder)
    with open_run(tmp_path / "empty-or-new", {}):  # an empty/new folder is fine
        pass
    lone = tmp_path / "killed-at-birth"
    lone.mkdir()
    (lone / ".lock").write_text("123\n")  # a writer killed before it wrote the marker
    with open_run(lone, {}):
        pass


def test_resume_on_a_mistyped_folder_is_an_error(tmp_path):
    with pytest.raises(NotARunError, match="nothing to resume"):
        open_run(tmp_path / "typo", {}, resume=True)


def test_config_differences_ignore_volatile_keys():
    a = {"train": {"steps": 5, "lr": 1.0}, "eval": {"split": "test"}}
    b = {"train": {"steps": 9, "lr": 2.0}, "eval": {"split": "val"}}
    assert config_differences(a, b) == ["train.lr"]


def test_cli_train_refuses_foreign_folder_and_locked_run(tmp_path, tiny_yaml, capsys):
    cfg = tiny_yaml(train={"steps": 2, "checkpoint_every": 1})
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "summary.json").write_text("{}")
    assert main(["train", str(cfg), "--out", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and str(folder) in err[0]
    assert (folder / "summary.json").read_text() == "{}"
    assert main(["train", str(cfg), "--out", str(folder), "--no-progress", "--force"]) == 0
    run = tmp_path / "run"
    with open_run(run, tiny_dict()):
        assert main(["train", str(cfg), "--out", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another process" in err[0]
