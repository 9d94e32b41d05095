"""Fan-beam CT end to end through the CLI (issue 17.3): ``spinv simulate --geometry fan`` of a
bundled CT slice, ``spinv reconstruct`` of the .npz and of the raw sinogram with FBP and TV
(TV beats FBP), and the one-line errors of the new options."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.data import load_dataset

SIZE = 48


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    x = torch.from_numpy(load_dataset("ct-head", "test")[:1])[:, None]
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="area")[0, 0]
    path = tmp_path_factory.mktemp("fan") / "slice.npy"
    np.save(path, x.numpy())
    return path


def _psnr(text: str) -> float:
    return float(re.search(r"PSNR ([0-9.]+) dB", text).group(1))


def test_fan_sinogram_simulated_and_reconstructed_fbp_and_tv(slice_file, tmp_path, capsys):
    npz = tmp_path / "fan.npz"
    assert main(["simulate", "--problem", "ct", "--input", str(slice_file), "--geometry", "fan",
                 "--angles", "60", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        problem, y = json.loads(str(f["problem"])), f["y"]
    fan = problem["geometry"]["fan"]
    assert fan == {"source_distance": 96.0, "detector_distance": 192.0,
                   "detector_type": "equiangular"}
    assert y.shape == (1, 1, 60, problem["geometry"]["n_detectors"])
    capsys.readouterr()
    psnr = {}
    for method, extra in (("fbp", []), ("tv", ["--alpha", "0.03", "--iterations", "150"])):
        out = tmp_path / f"{method}.npy"
        assert main(["reconstruct", "--measurements", str(npz), "--method", method, *extra,
                     "--out", str(out)]) == 0
        psnr[method] = _psnr(capsys.readouterr().out)
    assert psnr["tv"] > psnr["fbp"] + 1.0, psnr  # measured FBP 28.47, TV 30.49 dB (alpha 0.03:
    # the best of 0.003-0.3 on 3 validation slices, FBP 25.6 vs TV 27.4 dB there)
    # the raw sinogram with the geometry on the command line gives the same FBP
    raw = tmp_path / "raw.npy"
    np.save(raw, y[0, 0])
    out = tmp_path / "raw_fbp.npy"
    assert main(["reconstruct", "--measurements", str(raw), "--geometry", "fan", "--size",
                 str(SIZE), "--angles", "60", "--method", "fbp", "--out", str(out)]) == 0
    assert np.allclose(np.load(out), np.load(tmp_path / "fbp.npy"), atol=1e-5)


def test_flat_detector_and_distances_reach_the_problem(slice_file, tmp_path):
    npz = tmp_path / "flat.npz"
    assert main(["simulate", "--problem", "ct", "--input", str(slice_file), "--geometry", "fan",
                 "--source-distance", "80", "--detector-distance", "150", "--detector-type",
                 "flat", "--angles", "20", "--photons", "1e5", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        problem = json.loads(str(f["problem"]))
    assert problem["geometry"]["fan"] == {"source_distance": 80.0, "detector_distance": 150.0,
                                          "detector_type": "flat"}
    assert problem["noise"]["photons"] == 1e5


@pytest.mark.parametrize("args, needle", [
    (["--geometry", "cone"], "--geometry"),
    (["--source-distance", "100"], "--source-distance: applies to fan beams only"),
    (["--geometry", "fan", "--source-distance", "10"], "--source-distance must exceed"),
    (["--geometry", "fan", "--source-distance", "60", "--detector-distance", "50"],
     "--detector-distance must exceed"),
    (["--geometry", "fan", "--detector-type", "curved"], "--detector-type"),
    (["--geometry", "fan", "--detector-distance", "-5"], "--detector-distance"),
])
def test_bad_fan_options_one_line(slice_file, tmp_path, capsys, args, needle):
    out = tmp_path / "r.npy"
    code = main(["reconstruct", "--problem", "ct", "--input", str(slice_file), "--method", "fbp",
                 "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and needle in err and "\n" not in err, err
    assert not out.exists()


def test_raw_fan_sinogram_errors(slice_file, tmp_path, capsys):
    raw = tmp_path / "raw.npy"
    np.save(raw, np.zeros((30, 70), np.float32))
    out = tmp_path / "r.npy"
    for args, needle in ((["--geometry", "fan"], "--size"),
                         (["--geometry", "fan", "--size", "48", "--detectors", "71"],
                          "--detectors 71 does not match")):
        assert main(["reconstruct", "--measurements", str(raw), "--method", "fbp", "--out",
                     str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and "\n" not in err, err
    npz = tmp_path / "par.npz"
    assert main(["simulate", "--problem", "ct", "--input", str(slice_file), "--angles", "10",
                 "--out", str(npz)]) == 0
    capsys.readouterr()
    assert main(["reconstruct", "--measurements", str(npz), "--geometry", "fan", "--method",
                 "fbp", "--out", str(out)]) == 2
    assert "records a parallel-beam problem" in capsys.readouterr().err


def test_shipped_fan_beam_model_through_the_cli_beats_fbp(tmp_path, capsys):
    """The zoo's fan32-lpd (learned primal-dual with the fan-beam operator inside) on a
    fan-beam sinogram of a held-out ct-head slice, through `spinv reconstruct --model`."""
    x = torch.from_numpy(load_dataset("ct-head", "test")[1:2])[:, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="area")[0, 0]
    image, npz = tmp_path / "slice.npy", tmp_path / "fan32.npz"
    np.save(image, x.numpy())
    assert main(["simulate", "--problem", "ct", "--input", str(image), "--geometry", "fan",
                 "--angles", "30", "--out", str(npz)]) == 0
    capsys.readouterr()
    psnr = {}
    for method, extra in (("fbp", []), ("lpd", ["--model", "fan32-lpd"])):
        assert main(["reconstruct", "--measurements", str(npz), "--method", method, *extra,
                     "--out", str(tmp_path / f"{method}.npy")]) == 0
        psnr[method] = _psnr(capsys.readouterr().out)
    assert psnr["lpd"] > psnr["fbp"] + 2.0, psnr  # measured FBP 24.37, LPD 30.11 dB
