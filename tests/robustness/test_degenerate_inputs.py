"""Degenerate inputs are refused or handled, never silent (issue 15, class 10)."""

import math

import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.operators import SubsampledFourier
from spinv.problems import mri_problem


def test_an_all_zero_mask_is_refused_by_problems_and_the_cli(tmp_path, capsys):
    with pytest.raises(ValueError, match="nothing is measured"):
        mri_problem(mask=torch.zeros(8, 8))
    np.save(tmp_path / "zeros.npy", np.zeros((16, 16), np.float32))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((16, 16)).astype(np.float32))
    code = main(["reconstruct", "--problem", "mri", "--input", str(tmp_path / "x.npy"),
                 "--mask", str(tmp_path / "zeros.npy"), "--method", "zero-filled",
                 "--out", str(tmp_path / "r.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing is measured" in err and not (tmp_path / "r.npy").exists()


def test_the_adjoint_test_of_a_zero_operator_is_zero_not_nan():
    value = SubsampledFourier(torch.zeros(6, 6)).adjoint_test()
    assert value == 0.0 and not math.isnan(value)
