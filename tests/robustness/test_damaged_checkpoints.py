"""Damaged or mismatched checkpoints give one error naming the file and the field, on resume
and on evaluation, never a traceback (issue 15, class 4)."""

import json

import pytest

from spinv.cli import main

CONFIG = """
problem: {kind: denoise, image_size: 16, noise_sigma: 0.1}
data: {dataset: natural, n_train: 4, val_size: 2}
model: {name: postprocess-cnn, width: 4, depth: 2}
train: {steps: 2, batch_size: 2, checkpoint_every: 2, num_threads: 1, device: cpu}
"""


def _drop_step(meta):
    del meta["step"]


def _bad_step(meta):
    meta["step"] = "two"


def _missing_optimizer_tensor(meta):
    entry = next(iter(meta["optimizer"]["state"].values()))
    entry["exp_avg"] = {"__tensor__": "optim/99/exp_avg"}


def _bad_param_group(meta):
    meta["optimizer"]["param_groups"][0]["lr"] = -1


def _bad_rng(meta):
    meta["rng"] = {"python": {"version": 3, "state": [1, 2], "gauss_next": None}}


def _wrong_complex_keys(meta):
    meta["complex_keys"] = ["model/net.0.bias"]


@pytest.mark.parametrize("damage, field", [
    (_drop_step, "'step'"), (_bad_step, "'step'"),
    (_missing_optimizer_tensor, "'optimizer.state."), (_bad_param_group, "param_groups.0.lr"),
    (_bad_rng, "'rng'"), (_wrong_complex_keys, "'complex_keys'"),
])
def test_resume_and_evaluate_name_the_file_and_field(tmp_path, capsys, damage, field):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--no-progress"]) == 0
    meta_path = run / json.loads((run / "latest.json").read_text())["checkpoint"] / "meta.json"
    meta = json.loads(meta_path.read_text())
    damage(meta)
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    commands = [["train", str(cfg), "--out", str(run), "--resume", "--set", "train.steps=4"]]
    if field not in ("'rng'",):  # evaluation does not touch the RNG state
        commands.append(["evaluate", str(run), "--out", str(tmp_path / "eval")])
    for argv in commands:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
        assert "meta.json" in err or "checkpoint" in err
        assert field.strip("'") in err
    assert not (tmp_path / "eval").exists()


def test_weights_of_another_model_are_refused(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    other = tmp_path / "o.yaml"
    other.write_text(CONFIG.replace("width: 4", "width: 6"))
    assert main(["train", str(cfg), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main(["train", str(other), "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    ckpt = json.loads((tmp_path / "a" / "latest.json").read_text())["checkpoint"]
    foreign = tmp_path / "b" / ckpt / "weights.safetensors"
    (tmp_path / "a" / ckpt / "weights.safetensors").write_bytes(foreign.read_bytes())
    capsys.readouterr()
    code = main(["evaluate", str(tmp_path / "a"), "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "SHA-256" in err
