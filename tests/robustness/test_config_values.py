"""Config values: NaN/inf refused at parse time naming the key; YAML errors and non-UTF-8 files
name the file (issue 15, classes 6 and 7)."""

import pytest

from spinv.cli import main
from spinv.training.config import load_config, parse_config


@pytest.mark.parametrize("key, value", [("lr", ".nan"), ("grad_clip", ".inf"), ("lr", "-.inf")])
def test_non_finite_numbers_are_refused_naming_the_key(key, value):
    import yaml

    with pytest.raises(ValueError, match=f"'train.{key}'.*finite"):
        parse_config({"train": {key: yaml.safe_load(value)}})


def test_yaml_errors_and_bad_encodings_name_the_file(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {steps: 3\n")
    with pytest.raises(ValueError, match="broken.yaml.*not valid YAML"):
        load_config(broken)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.yaml.*not UTF-8"):
        load_config(latin)
    code = main(["train", str(broken), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "broken.yaml" in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()
