"""Experiment configs: smoke files load, malformed ones are rejected with the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spinv.training.config import (
    ExperimentConfig,
    apply_overrides,
    load_config,
    parse_config,
    parse_rotation,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["ct", "mri", "denoise"])
def test_smoke_configs_load(kind):
    cfg = load_config(ROOT / "configs" / f"smoke-{kind}.yaml")
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.problem.kind == kind
    assert 32 <= cfg.problem.image_size <= 48
    assert cfg.model.name == "postprocess-cnn"


def test_roundtrip_through_yaml():
    cfg = parse_config({"problem": {"kind": "mri", "mask": {"rate": 0.3}},
                        "model": {"name": "postprocess-cnn", "width": 4}})
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    assert again.model.options == {"width": 4}


def test_yaml_scientific_notation_string_is_a_float(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-3\n")  # PyYAML reads this as the string '1e-3'
    assert load_config(p).train.lr == pytest.approx(1e-3)
    assert load_config(p).name == "c"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"trian": {}}, "'trian': unknown key; allowed: data, eval, model"),
        ({"train": {"stepz": 3}}, "'train.stepz': unknown key"),
        ({"problem": {"mask": {"patern": "lines"}}}, "'problem.mask.patern': unknown key"),
        ({"train": {"steps": "ten"}}, "'train.steps': got 'ten'; expected an integer"),
        ({"train": {"steps": 2.5}}, "'train.steps': got 2.5; expected an integer"),
        ({"train": {"rotate": True}}, "'train.rotate': unknown key"),
        ({"data": {"rotate_train": "yes"}}, "'data.rotate_train': got 'yes'; expected true/false"),
        ({"train": {"lr": 0}}, "'train.lr': value 0.0 is out of range; expected a number > 0"),
        ({"train": {"batch_size": 0}}, "'train.batch_size': value 0 is out of range"),
        ({"problem": {"image_size": 4}}, "'problem.image_size': value 4 is out of range"),
        ({"problem": {"mask": {"rate": 1.5}}}, "'problem.mask.rate': value 1.5 is out of range"),
        ({"problem": {"kind": "pet"}}, "'problem.kind': got 'pet'; expected one of 'ct'"),
        ({"train": {"lr_schedule": "linear"}}, "'train.lr_schedule': got 'linear'"),
        ({"train": {"device": "gpu"}}, "'train.device': got 'gpu'"),
        ({"problem": {"mask": {"pattern": "zigzag"}}}, "'problem.mask.pattern': got 'zigzag'"),
        ({"problem": 3}, "config section 'problem': got 3; expected a mapping"),
        ({"data": {"n_train": -2}}, "'data.n_train': value -2 is out of range"),
        ({"eval": {"rotate": "sideways"}}, "eval.rotate='sideways'"),
        ([1, 2], "config: got [1, 2]; expected a mapping"),
    ],
)
def test_malformed_configs_are_rejected_with_key_path(data, fragment):
    with pytest.raises(ValueError) as info:
        parse_config(data)
    assert fragment in str(info.value)


def test_null_allowed_only_where_optional():
    assert parse_config({"data": {"n_train": None}}).data.n_train is None
    with pytest.raises(ValueError, match="'train.steps': got None"):
        parse_config({"train": {"steps": None}})


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train:\n  steps: -1\n")
    with pytest.raises(ValueError, match=r"wrong.yaml: config key 'train.steps'"):
        load_config(wrong)


def test_replace_revalidates():
    cfg = parse_config({})
    assert cfg.replace("train", seed=7).train.seed == 7
    with pytest.raises(ValueError, match="'train.seed'"):
        cfg.replace("train", seed=-1)


def test_parse_rotation():
    assert parse_rotation("none") is None
    assert parse_rotation("random") == "random"
    assert parse_rotation("-12.5") == -12.5
    with pytest.raises(ValueError, match="rotate='up'"):
        parse_rotation("up")


def test_overrides():
    cfg = apply_overrides(parse_config({}), ["data.n_train=7", "model.width=3", "train.lr=1e-4"])
    assert cfg.data.n_train == 7 and cfg.model.options["width"] == 3 and cfg.train.lr == 1e-4
    with pytest.raises(ValueError, match="'data.n_train': value 0 is out of range"):
        apply_overrides(cfg, ["data.n_train=0"])
    with pytest.raises(ValueError, match="expected section.key=value"):
        apply_overrides(cfg, ["lr"])
    with pytest.raises(ValueError, match="'train.lr.x' is not a section|'train.lr' is not a"):
        apply_overrides(cfg, ["train.lr.x=1"])
    with pytest.raises(ValueError, match="'train.stepz': unknown key"):
        apply_overrides(cfg, ["train.stepz=1"])
