"""The model zoo: a trained run released as an entry is listed, re-measured to the same figures,
rebuilt by ``load_model``, and refused when its weights were altered."""

import json

import pytest
import torch

from spinv.cli import main
from spinv.training import load_model, parse_config, train
from spinv.zoo import get_model, list_models, release, resolve_model, verify

CONFIG = {
    "name": "zoo-test",
    "problem": {"kind": "denoise", "image_size": 16, "noise_sigma": 0.1},
    "data": {"dataset": "natural", "n_train": 4, "val_size": 2},
    "model": {"name": "postprocess-cnn", "width": 4, "depth": 2},
    "train": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "num_threads": 1,
              "device": "cpu"},
    "eval": {"batch_size": 4},
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    base = tmp_path_factory.mktemp("zoo")
    run = base / "run"
    train(parse_config(CONFIG), run, progress=False)
    root = base / "models"
    root.mkdir()
    release(run, "tiny-denoiser", "test denoiser", root=root)
    return run, root


def test_a_released_entry_carries_its_provenance_and_rebuilds(zoo):
    run, root = zoo
    (entry,) = list_models(root)
    p = entry.provenance
    assert entry.name == "tiny-denoiser" and p["steps"] == 4 and p["seed"] == 0
    assert p["problem"]["kind"] == "denoise" and p["precision"] == "float32"
    assert p["release_metrics"]["split"] == "test" and p["release_metrics"]["n_images"] > 0
    assert len(p["weights_sha256"]) == 64 and p["cpu_seconds"] > 0
    shipped, _ = load_model(entry.checkpoint)
    trained, _ = load_model(run)
    for a, b in zip(shipped.state_dict().values(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resolve_model("tiny-denoiser", root) == entry.checkpoint
    assert resolve_model(run, root) == run


def test_verify_re_measures_the_release_figures(zoo):
    _, root = zoo
    rows = verify("tiny-denoiser", root)
    assert [r["metric"] for r in rows] == ["psnr", "ssim", "baseline_psnr", "baseline_ssim"]
    assert all(r["ok"] and abs(r["difference"]) < 1e-6 for r in rows)


def test_altered_weights_and_unknown_names_are_refused(zoo, tmp_path):
    import shutil

    _, root = zoo
    copy = tmp_path / "models"
    shutil.copytree(root, copy)
    weights = copy / "tiny-denoiser" / "model" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        verify("tiny-denoiser", copy)
    with pytest.raises(ValueError, match="no model named 'nope'.*tiny-denoiser"):
        get_model("nope", root)
    with pytest.raises(ValueError, match="exists"):
        release(zoo[0], "tiny-denoiser", "again", root=root)


def test_models_cli_lists_and_refuses_unknown_names(capsys):
    assert main(["models", "list"]) == 0
    assert main(["models", "show", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model named 'no-such-model'") and err.count("\n") == 1


def test_provenance_is_plain_json(zoo):
    _, root = zoo
    text = (root / "tiny-denoiser" / "provenance.json").read_text()
    assert json.loads(text)["config"]["model"]["name"] == "postprocess-cnn"
