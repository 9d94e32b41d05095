"""The protocol for chapter 3 (``nonexpansive``) and the generative talk (``generative``): the
catalogue lists them, configs are typed (one error naming the key path and the file), files
with one section per experiment, the progress protocol, and ``spinv experiment run`` giving the
same results as the chapter commands on the smoke configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spinv.cli import main
from spinv.experiments.generative import COMPARISON
from spinv.experiments.generative.config import GenerativeConfig
from spinv.experiments.nonexpansive import DENOISE, PNP, TOY
from spinv.experiments.protocol import STAGE, Experiment, catalogue, find

ROOT = Path(__file__).resolve().parents[2]
NE_SMOKE = ROOT / "configs" / "nonexpansive-smoke.yaml"
GEN_SMOKE = ROOT / "configs" / "generative-smoke.yaml"


def _numbers(obj):
    """``obj`` without wall times and machine descriptions."""
    if isinstance(obj, dict):
        return {k: _numbers(v) for k, v in obj.items()
                if "seconds" not in k and k not in ("machine", "machine_after")}
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    return obj


def test_catalogue_lists_chapter_3_and_the_generative_experiment(capsys):
    chapters = catalogue()
    assert list(chapters["nonexpansive"]) == ["toy", "denoise", "pnp"]
    assert list(chapters["generative"]) == ["comparison"]
    assert list(chapters).index("nonexpansive") < list(chapters).index("generative")
    for e in (TOY, DENOISE, PNP, COMPARISON):
        assert isinstance(e, Experiment) and find(e.chapter, e.name) is e
        assert e.resumable and e.report is not None
    assert isinstance(COMPARISON.load({}), GenerativeConfig)
    assert main(["experiment", "list"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()]
    for row in (["nonexpansive", "toy"], ["nonexpansive", "denoise"], ["nonexpansive", "pnp"],
                ["generative", "comparison"]):
        assert row in rows


@pytest.mark.parametrize("chapter, name, text, key", [
    ("nonexpansive", "denoise", "denoise:\n  steps: 2\n  widht: 8\n", "'denoise.widht'"),
    ("nonexpansive", "pnp", "description: x\npnp: {gamma: 2.0}\n", "'pnp.gamma'"),
    ("nonexpansive", "pnp", "pnp: {admm_rhos: []}\n", "'pnp.admm_rhos'"),
    ("nonexpansive", "toy", "toy: {steps: 0}\n", "'toy.steps'"),
    ("nonexpansive", "toy", "steps: 3\nlr: fast\n", "'lr'"),  # a flat file
    ("generative", "comparison", "model: {latent: 3}\n", "'model.latent'"),
    ("generative", "comparison", "problem: {rates: [0.2, 1.5]}\n", "'problem.rates[1]'"),
    ("generative", "comparison", "problem: {train_setting: {noise: 0}}\n",
     "'problem.train_setting.noise'"),
    ("generative", "comparison", "seeds: 1\n", "'seeds'"),
    ("generative", "comparison", "device: gpu\n", "'device'"),
])
def test_bad_config_key_is_one_error_naming_the_key_path_and_file(tmp_path, capsys, chapter,
                                                                  name, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["experiment", "run", chapter, name, str(path), "--out", str(tmp_path / "o"),
                 "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert key in err[0] and str(path) in err[0]
    assert not (tmp_path / "o").exists()


def test_files_with_one_section_per_experiment():
    assert DENOISE.load(NE_SMOKE).steps == 2 and TOY.load(NE_SMOKE).steps == 20
    assert PNP.load(NE_SMOKE, None, ["iterations=7"]).iterations == 7  # the section read
    with pytest.raises(ValueError, match="'denoise.steps'"):
        DENOISE.load(NE_SMOKE, None, ["steps=-1"])
    with pytest.raises(ValueError, match="no 'pnp' section; the file has \\['toy'\\]"):
        PNP.load(ROOT / "configs" / "nonexpansive-toy.yaml")
    with pytest.raises(ValueError, match="top-level key 'tyo'"):
        TOY.load({"tyo": {}, "denoise": {}})
    with pytest.raises(ValueError, match="no scale sections"):
        TOY.load(NE_SMOKE, "small")
    assert TOY.load({"toy": None}) == TOY.load({})  # an empty section: the defaults
    for path in sorted((ROOT / "configs").glob("generative-*.yaml")):
        assert COMPARISON.load(path).data.dataset == "brain-t1"


def test_progress_protocol_of_the_toy_and_the_denoisers(tmp_path):
    calls = []
    cfg = TOY.load({"toy": {"steps": 3, "n_points": 4, "depth": 2, "hidden": 3}})
    TOY(cfg, tmp_path / "toy", lambda k, n, s: calls.append((k, n, s[STAGE])))
    assert calls == [(k, 3, f"toy {net}") for net in ("nonexpansive", "unconstrained")
                     for k in (1, 2, 3)]
    from spinv.experiments.nonexpansive.denoiser_training import DenoiserTraining, train_denoiser
    from spinv.nn.dncnn import DnCNN

    seen = []
    images = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    train_denoiser(DnCNN(1, width=2, depth=2, seed=0), images,
                   DenoiserTraining(0.1, 2, 1, 8), lambda k, n, s: seen.append((k, n)))
    assert seen == [(1, 2), (2, 2)]


def _same_as_alias(tmp_path, generic: list[str], alias: list[str]) -> None:
    assert main(generic + ["--out", str(tmp_path / "generic"), "--quiet"]) == 0
    assert main(alias + ["--out", str(tmp_path / "alias"), "--quiet"]) == 0
    a, b = (json.loads((tmp_path / d / "results.json").read_text())
            for d in ("generic", "alias"))
    assert _numbers(a) == _numbers(b)


@pytest.mark.parametrize("name", ["toy", "pnp"])
def test_experiment_run_equals_the_nonexpansive_command(tmp_path, name):
    _same_as_alias(tmp_path, ["experiment", "run", "nonexpansive", name, str(NE_SMOKE)],
                   ["nonexpansive", name, str(NE_SMOKE)])


def test_experiment_run_equals_the_generative_command(tmp_path):
    _same_as_alias(tmp_path, ["experiment", "run", "generative", "comparison", str(GEN_SMOKE)],
                   ["generative", "experiment", "--config", str(GEN_SMOKE)])
