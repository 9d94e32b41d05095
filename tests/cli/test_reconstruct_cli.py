"""CLI smoke tests of `spinv simulate` and `spinv reconstruct`: results, errors, atomic output."""

from __future__ import annotations

import numpy as np
import pytest

from spinv.cli import main
from spinv.data.phantoms import shepp_logan


@pytest.fixture()
def phantom(tmp_path):
    path = tmp_path / "phantom.npy"
    np.save(path, shepp_logan(32).numpy().reshape(32, 32).astype(np.float32))
    return path


def _psnr_line(out: str) -> float:
    return float(out.split("PSNR")[1].split("dB")[0])


def test_reconstruct_fbp_and_tv(phantom, tmp_path, capsys):
    out = tmp_path / "fbp.npy"
    assert main(["reconstruct", "--problem", "ct", "--input", str(phantom), "--method", "fbp",
                 "--angles", "30", "--out", str(out)]) == 0
    fbp_psnr = _psnr_line(capsys.readouterr().out)
    assert np.load(out).shape == (32, 32)
    assert main(["reconstruct", "--problem", "ct", "--input", str(phantom), "--method", "tv",
                 "--alpha", "0.02", "--angles", "30", "--iterations", "200",
                 "--out", str(tmp_path / "tv.png")]) == 0
    assert _psnr_line(capsys.readouterr().out) > fbp_psnr  # TV wins on a piecewise-constant phantom


def test_reconstruct_mri_zero_filled_and_mask_file(phantom, tmp_path, capsys):
    mask = np.zeros((32, 32), np.float32)
    mask[:, 12:20] = 1.0
    np.save(tmp_path / "mask.npy", mask)
    assert main(["reconstruct", "--problem", "mri", "--input", str(phantom), "--method",
                 "zero-filled", "--mask", str(tmp_path / "mask.npy"), "--noise", "0",
                 "--out", str(tmp_path / "zf.npy")]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert np.iscomplexobj(np.load(tmp_path / "zf.npy"))


def test_simulate_writes_npz(phantom, tmp_path):
    out = tmp_path / "y.npz"
    assert main(["simulate", "--problem", "mri", "--input", str(phantom), "--mask", "radial",
                 "--rate", "0.3", "--seed", "3", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["y"].shape == (1, 1, 32, 32) and np.iscomplexobj(z["y"])
        assert abs(z["mask"].mean() - 0.3) < 0.03


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--method", "nope"], "--method"),
        (["--rate", "1.5"], "--rate"),
        (["--mask", "triangle"], "mask="),
        (["--alpha", "-1", "--method", "tv"], "--alpha"),
        (["--method", "fbp"], "not defined"),
    ],
)
def test_bad_input_one_line_no_output(phantom, tmp_path, capsys, args, needle):
    out = tmp_path / "r.npy"
    base = ["reconstruct", "--problem", "mri", "--input", str(phantom), "--method", "zero-filled",
            "--out", str(out)]
    # later options override earlier ones
    code = main(base + args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not out.exists() and not list(tmp_path.glob(".r.npy*"))


def test_unreadable_and_nan_input(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    assert main(["reconstruct", "--problem", "ct", "--input", str(bad), "--method", "fbp",
                 "--out", str(tmp_path / "o.npy")]) == 2
    assert "bad.npy" in capsys.readouterr().err
    nan = tmp_path / "nan.npy"
    img = np.ones((16, 16), np.float32)
    img[3, 3] = np.nan
    np.save(nan, img)
    assert main(["reconstruct", "--problem", "ct", "--input", str(nan), "--method", "fbp",
                 "--out", str(tmp_path / "o.npy")]) == 2
    assert "NaN" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--problem", "mri", "--mask", "radial", "--rate", "0.3"],
                                  ["--problem", "ct", "--angles", "12", "--photons", "500"]])
def test_simulate_npz_carries_its_problem(phantom, tmp_path, args):
    import json

    import torch

    from spinv.cli._common import read_ground_truth
    from spinv.problems import Problem

    out = tmp_path / "y.npz"
    assert main(["simulate", "--input", str(phantom), "--seed", "3", "--out", str(out)]
                + args) == 0
    with np.load(out) as z:
        problem = Problem.from_dict(json.loads(str(z["problem"])))
        y, truth = z["y"], z["ground_truth"]
    assert problem.size == 32 and problem.kind == args[1]
    # the stored problem alone re-simulates the stored measurements bit for bit
    again = problem.simulate(read_ground_truth(str(phantom)), seed=3).numpy()
    assert np.array_equal(again, y) and truth.shape == (1, 1, 32, 32)
    if args[1] == "ct":
        assert problem.geometry.n_angles == 12 and problem.noise.photons == 500
        assert problem.analytic(torch.from_numpy(y)).shape == (1, 1, 32, 32)
