"""Photon-starved CT simulations are reported, not silent (issue 15, class 15)."""

import warnings

import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.problems import ct_problem


def test_starved_rays_warn_with_the_fix_and_real_slices_do_not():
    p = ct_problem(32, 20)
    with pytest.warns(UserWarning, match=r"% of the CT rays detect no photon.*--mu.*--photons"):
        p.simulate(torch.ones(1, 1, 32, 32), seed=0)
    from spinv.data import load_dataset

    head = torch.from_numpy(load_dataset("ct-head", "test")[:2])[:, None]
    head = torch.nn.functional.interpolate(head, size=(32, 32), mode="area")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.simulate(head, seed=0)


def test_the_cli_prints_one_warning_line(tmp_path, capsys):
    bright = np.ones((32, 32), np.float32)
    bright[0, 0] = 0  # load_images maps the stack to [0, 1]: a bright slab, not air around it
    np.save(tmp_path / "bright.npy", bright)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["simulate", "--problem", "ct", "--input", str(tmp_path / "bright.npy"),
                     "--angles", "20", "--out", str(tmp_path / "y.npz")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and "Traceback" not in err
