"""A CT geometry whose system matrix would not fit is refused before it is built, with the
estimate and the limit, through the API, the CLI and configs (issue 15, class 3)."""

import numpy as np
import pytest

from spinv.cli import main
from spinv.operators import ParallelBeamCT
from spinv.operators.ct_matrix import estimate_operator_bytes


def test_the_estimate_bounds_the_real_matrix():
    op = ParallelBeamCT(48, 20, cache=False)
    m = op.matrix
    real = m.data.nbytes + m.indices.nbytes
    estimate = estimate_operator_bytes(48, 20, op.n_detectors)
    assert real * 2 < estimate < real * 12  # R, R^T and torch copies, with headroom


def test_api_refuses_a_huge_geometry_before_building(monkeypatch):
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "1")
    with pytest.raises(ValueError, match=r"4000x4000 px.*about \d+\.\d GiB.*limit of 1\.0 GiB.*"
                                         "SPINV_MAX_OPERATOR_GIB"):
        ParallelBeamCT(4000, 50)


def test_cli_and_config_refuse_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "0.001")
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.float32))
    code = main(["simulate", "--problem", "ct", "--input", str(tmp_path / "x.npy"), "--size",
                 "300", "--out", str(tmp_path / "y.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "SPINV_MAX_OPERATOR_GIB" in err and err.count("\n") == 1
    cfg = tmp_path / "big.yaml"
    cfg.write_text("problem: {kind: ct, image_size: 300}\nmodel: {name: postprocess-cnn}\n")
    code = main(["train", str(cfg), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "GiB" in err and err.count("\n") == 1
    assert not (tmp_path / "y.npz").exists()


def test_bad_limit_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "lots")
    with pytest.raises(ValueError, match="SPINV_MAX_OPERATOR_GIB='lots'"):
        ParallelBeamCT(300, 5, cache=False)
