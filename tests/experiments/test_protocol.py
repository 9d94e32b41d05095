"""The experiment protocol: the catalogue, typed config loading, the generic ``spinv experiment``
command and its agreement with the chapter commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinv.cli import main
from spinv.experiments.protocol import Experiment, catalogue, find, staged

from .conftest import without_keys

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "equivariance-smoke.yaml"
TIMING = {"train_time_s", "wall_time_s", "seconds", "learn_seconds"}


def _strip(obj):
    return without_keys(obj, TIMING)


def test_catalogue_lists_every_experiment_of_chapters_1_and_2():
    chapters = catalogue()
    assert list(chapters["equivariance"]) == ["sweep-n", "groups", "depth", "compare-models"]
    assert set(chapters["sampling"]) == {"learn", "beta-sweep", "regularisers", "training-size",
                                         "lines", "density"}
    for chapter in ("sampling", "equivariance"):
        for name, e in chapters[chapter].items():
            assert isinstance(e, Experiment) and (e.chapter, e.name) == (chapter, name)
            assert e.summary and "\n" not in e.summary
            e.load({})  # every schema has defaults for every key
    with pytest.raises(ValueError, match="sweep-n, groups, depth, compare-models"):
        find("equivariance", "sweep")
    with pytest.raises(ValueError, match="'nope'"):
        find("nope", "x")


def test_list_command(capsys):
    assert main(["experiment", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["equivariance", "depth"] for line in lines)
    assert any(line.split()[:2] == ["sampling", "beta-sweep"] for line in lines)


@pytest.mark.parametrize("chapter, name, text, key", [
    ("equivariance", "groups", "small:\n  width: 8\n  widht: 8\n", "'small.widht'"),
    ("equivariance", "depth", "paper:\n  reuse: wrap\n", "'paper.reuse'"),
    ("sampling", "beta-sweep", "base:\n  sise: 3\nbetas: [0.1]\n", "'base.sise'"),
    ("sampling", "lines", "base: {}\nbeta: -1.0\n", "'beta'"),
    ("sampling", "learn", "size: 32\nbetta: 0.1\n", "'betta'"),
])
def test_bad_config_key_is_one_error_naming_the_key_path_and_file(tmp_path, capsys, chapter,
                                                                  name, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    scale = ["--scale", "paper"] if "paper:" in text else []
    code = main(["experiment", "run", chapter, name, str(path), "--out", str(tmp_path / "o"),
                 *scale, "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert key in err[0] and str(path) in err[0]
    assert not (tmp_path / "o").exists()


def test_overrides_apply_to_the_section_read():
    e = find("equivariance", "sweep-n")
    cfg = e.load(SMOKE, "small", ["steps=7", "groups=[C4]", "alpha_grid=[0.5]"])
    assert (cfg.steps, cfg.groups, cfg.alpha_grid, cfg.width) == (7, ["C4"], [0.5], 8)
    with pytest.raises(ValueError, match="'small.steps'"):
        e.load(SMOKE, "small", ["steps=0"])
    with pytest.raises(ValueError, match="key.path=value"):
        e.load(SMOKE, "small", ["steps"])
    learn = find("sampling", "learn")
    assert learn.load(ROOT / "configs" / "sampling-smoke.yaml", None, ["beta=0.5"]).beta == 0.5


def test_resume_refused_where_there_is_nothing_to_continue(tmp_path):
    e = find("sampling", "beta-sweep")
    with pytest.raises(ValueError, match="--resume"):
        e(e.load({}), tmp_path, resume=True)
    with pytest.raises(TypeError, match="BetaSweepConfig"):
        e({"betas": [0.1]}, tmp_path)


def test_staged_progress_labels_every_call():
    calls = []
    progress = staged(lambda step, total, scalars: calls.append((step, total, dict(scalars))),
                      "N2-C4")
    progress(1, 3, {"loss": 0.5})
    assert calls == [(1, 3, {"loss": 0.5, "stage": "N2-C4"})]
    assert staged(None, "x") is None


def test_generic_run_equals_the_chapter_command(tmp_path):
    args = [str(SMOKE), "--out"]
    assert main(["equivariance", "depth", *args, str(tmp_path / "a"), "--quiet", "--seed",
                 "1"]) == 0
    assert main(["experiment", "run", "equivariance", "depth", *args, str(tmp_path / "b"),
                 "--quiet", "--set", "seed=1"]) == 0
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in "ab")
    assert _strip(a) == _strip(b) and a["settings"]["scale"] == "small"
    assert a["settings"]["seed"] == 1
    assert (tmp_path / "b" / "models" / "depth-C4" / "spinv-run.json").is_file()


def test_generic_run_equals_sampling_learn(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("size: 16\nn_train: 2\nn_test: 3\nmaxiter: 2\nalpha_maxiter: 2\n"
                      "baselines: [low_pass]\n")
    assert main(["sampling", "learn", str(config), "--out", str(tmp_path / "a"),
                 "--maxiter", "3"]) == 0
    assert "held-out PSNR" in capsys.readouterr().out
    assert main(["experiment", "run", "sampling", "learn", str(config), "--out",
                 str(tmp_path / "b"), "--set", "maxiter=3"]) == 0
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert _strip(a) == _strip(b) and a["config"]["maxiter"] == 3


def test_generic_run_shows_progress_per_stage(tmp_path, capsys):
    from spinv.cli.experiment_cmd import StageBars

    bars = StageBars(enabled=False)
    seen = []
    real = type(bars).__call__

    def spy(self, step, total, scalars):
        real(self, step, total, scalars)
        seen.append((scalars.get("stage"), step, total))

    e = find("equivariance", "groups")
    cfg = e.load(SMOKE, "small", ["orders=[1, 2]", "n_test=1"])
    type(bars).__call__ = spy
    try:
        e(cfg, tmp_path, bars)
    finally:
        type(bars).__call__ = real
        bars.close()
    assert [s for s, step, _ in seen if step == 3] == ["m1", "m2"]
    assert all(total == 3 for _, _, total in seen)
