"""Zoo entries of kind "sampling-pattern" (spinv.zoo.patterns): the shipped bilevel-learned
MRI sampling patterns load with their SHA-256 checked, are binary weights in [0, 1] with the
recorded sampling rate, carry their learned alpha, resolve like files in
``spinv sampling evaluate``, and verify's comparison fails on a tampered figure."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.zoo import ZOO_ROOT, get_model, list_models, resolve_model
from spinv.zoo.patterns import (
    KIND,
    compare,
    load_pattern,
    pattern_alpha,
    resolve_pattern,
    zoo_pattern_file,
)

SHIPPED = ("sampling-free64", "sampling-lines64")


def _patterns(root=ZOO_ROOT):
    return [e for e in list_models(root) if e.kind == KIND]


def test_the_zoo_ships_learned_patterns_beside_the_models():
    names = {e.name for e in _patterns()}
    assert set(SHIPPED) <= names
    assert any(e.kind == "model" for e in list_models())
    for entry in _patterns():
        line = entry.summary()
        assert line.startswith(f"{entry.name}: [sampling pattern]") and "alpha" in line


@pytest.mark.parametrize("entry", _patterns(), ids=lambda e: e.name)
def test_a_shipped_pattern_is_binary_in_0_1_with_its_recorded_rate_and_alpha(entry):
    p = entry.provenance
    pattern, prov = load_pattern(entry.name)
    continuous, _ = load_pattern(entry.name, continuous=True)
    size = p["problem"]["size"]
    assert pattern.shape == continuous.shape == (size, size) and prov is not None
    assert bool(((pattern == 0) | (pattern == 1)).all())
    assert float(continuous.min()) >= 0 and float(continuous.max()) <= 1
    # thresholding at 0 (Sec. 1.3.3) turned the learned weights into the shipped pattern
    assert torch.equal(pattern, (continuous > p["config"]["threshold"]).to(pattern.dtype))
    assert float(pattern.mean()) == pytest.approx(p["problem"]["sampling_rate"], abs=1e-12)
    assert 0 < p["problem"]["sampling_rate"] < 1
    assert pattern_alpha(entry.name) == p["alpha"] > 0
    released = p["release_metrics"]
    assert released["split"] == "test" and released["n_images"] == 22
    assert {"learned", "variable_density", "low_pass"} <= set(released["results"])
    for name, rec in released["results"].items():
        assert rec["alpha"] > 0 and rec["psnr"] > 10, name
        if name != "variable_density_lines":  # whole lines: the rate rounds to a line count
            assert rec["sampling_rate"] == pytest.approx(p["problem"]["sampling_rate"],
                                                         abs=2.0 / size**2)


def test_a_tampered_pattern_file_is_refused(tmp_path):
    name = SHIPPED[0]
    shutil.copytree(ZOO_ROOT / name, tmp_path / name)
    path = tmp_path / name / "pattern.npy"
    array = np.load(path)
    array[0, 0] = 1.0 - array[0, 0]
    np.save(path, array)
    with pytest.raises(ValueError, match="SHA-256"):
        load_pattern(name, root=tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        resolve_pattern(name, root=tmp_path)


def test_verify_comparison_accepts_the_release_and_fails_on_a_tampered_figure():
    released = get_model(SHIPPED[0]).provenance["release_metrics"]
    rows = compare(released, copy.deepcopy(released))
    assert rows and all(r["ok"] and r["difference"] == 0 for r in rows)
    assert {r["metric"] for r in rows} >= {"learned.psnr", "learned.ssim",
                                            "variable_density.psnr", "low_pass.ssim"}
    tampered = copy.deepcopy(released)
    tampered["results"]["learned"]["psnr"] += 0.06  # beyond the 0.05 dB tolerance
    tampered["results"]["low_pass"]["ssim"] -= 0.001  # within the 0.002 tolerance
    bad = {r["metric"]: r["ok"] for r in compare(tampered, released)}
    assert bad.pop("learned.psnr") is False and all(bad.values())
    missing = copy.deepcopy(released)
    del missing["results"]["low_pass"]
    assert not all(r["ok"] for r in compare(released, missing))


def test_a_zoo_name_resolves_like_a_file_and_models_are_not_patterns(tmp_path):
    name = SHIPPED[0]
    path, alpha = resolve_pattern(name)
    assert path == ZOO_ROOT / name / "pattern.npy" and alpha == pattern_alpha(name)
    assert resolve_pattern(tmp_path / "mine.npy") == (tmp_path / "mine.npy", None)
    with pytest.raises(ValueError, match="no sampling pattern of that name"):
        resolve_pattern("no-such-pattern")
    with pytest.raises(ValueError, match="not a trained model"):
        resolve_model(name)
    model = next(e.name for e in list_models() if e.kind == "model")
    with pytest.raises(ValueError, match="not a sampling pattern"):
        load_pattern(model)


def test_cli_show_lists_the_pattern_and_evaluate_refuses_an_unknown_name(capsys):
    assert main(["models", "show", SHIPPED[0]]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[: out.rindex("}") + 1])["kind"] == KIND
    assert out.strip().endswith(str(ZOO_ROOT / SHIPPED[0] / "pattern.npy"))
    assert main(["sampling", "evaluate", "no-such-pattern"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no-such-pattern" in err[0]


def test_simulate_takes_a_zoo_pattern_name_as_its_mask(tmp_path, capsys):
    name = SHIPPED[0]
    assert zoo_pattern_file(name) == ZOO_ROOT / name / "pattern.npy"
    assert zoo_pattern_file("lines") is None and zoo_pattern_file("mine.npy") is None
    size = get_model(name).provenance["problem"]["size"]
    image = tmp_path / "x.npy"
    np.save(image, np.random.default_rng(0).random((size, size), dtype=np.float32))
    out = tmp_path / "y.npz"
    assert main(["simulate", "--problem", "mri", "--input", str(image), "--mask", name,
                 "--noise", "0.02", "--out", str(out)]) == 0
    pattern, _ = load_pattern(name)
    with np.load(out) as f:
        assert np.array_equal(f["mask"], pattern.numpy().astype(f["mask"].dtype))
    capsys.readouterr()
    assert main(["simulate", "--problem", "mri", "--input", str(image), "--size", "32",
                 "--mask", name, "--out", str(tmp_path / "z.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "(64, 64)" in err[0]
