"""Smoke tests of `spinv data list|show` through the real entry point."""

from __future__ import annotations

import numpy as np
import pytest

from spinv.cli import main


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("ct-head", "brain-t1", "brain-complex", "natural"):
        assert name in out
    assert "60/20/14" in out


def test_data_show_writes_png(tmp_path, capsys):
    import imageio.v3 as iio

    out = tmp_path / "sub" / "grid.png"
    code = main(
        ["data", "show", "ct-head", "--split", "test", "--index", "0,3-5", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    img = iio.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and np.ptp(img) > 0
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temporaries left


@pytest.mark.parametrize(
    "argv, match",
    [
        (["data", "show", "nope", "--out", "x.png"], "unknown dataset name='nope'"),
        (["data", "show", "natural", "--split", "dev", "--out", "x.png"], "unknown split"),
        (["data", "show", "natural", "--index", "99", "--out", "x.png"], "out of range"),
        (["data", "show", "natural", "--index", "a", "--out", "x.png"], "--index"),
        (["data", "show", "natural", "--out", "x.jpg"], ".png"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and match in err and "\n" not in err
    assert not list(tmp_path.iterdir())
