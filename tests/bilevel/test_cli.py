"""``spinv sampling learn|evaluate`` and the config loader."""

import json

import numpy as np
import pytest

from spinv.bilevel.config import SamplingConfig, load_config
from spinv.cli import main

TINY = """
data: brain-t1
size: 16
n_train: 2
n_test: 6
maxiter: 3
alpha_maxiter: 3
beta: 1.0e-2
baselines: [variable_density, knoll]
"""


def test_config_rejects_unknown_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['betta'\]"):
        SamplingConfig.from_dict({"betta": 1.0})
    with pytest.raises(ValueError, match="regulariser='tgv'"):
        SamplingConfig.from_dict({"regulariser": "tgv"})
    with pytest.raises(ValueError, match="size=4"):
        SamplingConfig.from_dict({"size": 4})
    for bad in ([0.5], [0.5, 0.25, 1.0], [0.0, 1.0], "half"):
        with pytest.raises(ValueError, match="beta_continuation"):
            SamplingConfig.from_dict({"beta_continuation": bad})
    assert SamplingConfig.from_dict({"beta_continuation": [0.25, 1]}).beta_continuation == [0.25, 1]
    with pytest.raises(ValueError, match="line_weights"):
        SamplingConfig.from_dict({"line_weights": "squared"})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_smoke_config_is_valid():
    cfg = load_config("configs/sampling-smoke.yaml")
    assert cfg.size == 32


def test_typed_reader_gives_the_config_of_the_bilevel_reader():
    """The protocol's typed reader (spinv experiment run sampling learn) and the bilevel
    package's own reader give the same settings for every shipped learning config."""
    from spinv.experiments.sampling import LEARN

    for name in ("smoke", "small", "paper"):
        path = f"configs/sampling-{name}.yaml"
        assert LEARN.load(path).to_dict() == load_config(path).to_dict()
    assert LEARN.load("configs/sampling-smoke.yaml", None, ["seed=3"]).seed == 3


def test_cli_learn_and_evaluate(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    assert main(["sampling", "learn", str(cfg), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "iter    1  objective" in text and "rate" in text and "time" in text
    m = json.loads((out / "metrics.json").read_text())
    assert 0 < m["sampling_rate"] <= 1 and m["alpha"] > 0
    for name in ("learned", "variable_density", "knoll"):
        r = m["results"][name]
        assert np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 and r["n_images"] == 6
        assert abs(r["sampling_rate"] - m["sampling_rate"]) < 1 / 16 + 1e-9
    pattern = np.load(out / "pattern.npy")
    assert pattern.shape == (16, 16) and (out / "pattern.png").stat().st_size > 0
    assert main(["sampling", "evaluate", str(out / "pattern.npy"), "--data", "brain-t1",
                 "--out", str(out)]) == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["alpha"] == pytest.approx(m["alpha"]) and ev["n_images"] == 50


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sise: 3\n")
    assert main(["sampling", "learn", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config key 'sise': unknown key" in err[0] and str(bad) in err[0]
    bad.write_text("size: 4\n")
    assert main(["sampling", "learn", str(bad), "--out", str(tmp_path)]) == 2
    assert "size=4: expected an integer >= 8" in capsys.readouterr().err
    assert main(["sampling", "evaluate", str(tmp_path / "nope.npy")]) == 2
