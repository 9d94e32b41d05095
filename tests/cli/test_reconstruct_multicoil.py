"""`spinv reconstruct --measurements` on fastMRI multi-coil k-space: the bundled simulated file
through the CLI with rss and TV (TV beats RSS against the stored ground truth), several slices
with their own ESPIRiT maps, the CLI equal to the API, and the errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.operators.coil_sensitivities import birdcage_maps

BUNDLED = Path(__file__).resolve().parents[2] / "examples" / "brain_multicoil_kspace.h5"
#: TV weight chosen on brain-t1 *validation* slices simulated with the bundled set-up (8 birdcage
#: coils, 4x equispaced lines, sigma 0.01 per coil), never on the bundled test slice.
TV_ALPHA = "0.01"


def _psnr(out: str) -> float:
    return float(out.split("PSNR")[1].split("dB")[0])


def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


@pytest.mark.slow
def test_bundled_file_rss_and_tv(tmp_path, capsys):
    assert main(["reconstruct", "--measurements", str(BUNDLED), "--method", "rss", "--out",
                 str(tmp_path / "rss.npy")]) == 0
    rss_line = capsys.readouterr().out
    assert "8 coils" in rss_line and "ground truth stored in the measurements" in rss_line
    rss = np.load(tmp_path / "rss.npy")
    with h5py.File(BUNDLED) as f:
        k, mask = f["kspace"][()], f["mask"][()]
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k * mask, axes=(-2, -1)),
                                               norm="ortho"), axes=(-2, -1))
    reference = np.sqrt((np.abs(coil_images) ** 2).sum(1))[0]  # fastMRI's zero-filled RSS
    assert rss.shape == (216, 176) and np.allclose(np.abs(rss), reference, atol=1e-5)
    assert main(["reconstruct", "--measurements", str(BUNDLED), "--method", "tv", "--alpha",
                 TV_ALPHA, "--iterations", "100", "--out", str(tmp_path / "tv.npy")]) == 0
    tv_line = capsys.readouterr().out
    assert _psnr(tv_line) > _psnr(rss_line) + 3.0  # measured: 20.05 -> 24.59 dB at 100 iterations


@pytest.fixture(scope="module")
def two_slices(tmp_path_factory):
    """Two 32 x 28 slices, 4 birdcage coils, 16 central lines plus every 3rd, no noise."""
    yy, xx = np.mgrid[:32, :28]
    blob = (np.abs(yy - 16) < 10) & (np.abs(xx - 14) < 8)
    u = np.stack([blob * np.exp(1j * xx / 9), 0.5 * blob]).astype(np.complex64)
    coils = u[:, None] * birdcage_maps(4, (32, 28)).numpy()[None]
    mask = np.zeros(28, np.float32)
    mask[::3] = 1
    mask[6:22] = 1
    path = tmp_path_factory.mktemp("mc") / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=(_fft2c(coils) * mask).astype(np.complex64))
        f.create_dataset("mask", data=mask)
        f.create_dataset("reconstruction_rss", data=np.abs(u))
    return path


def test_several_slices_each_with_its_maps_and_the_api(two_slices, tmp_path, capsys):
    from spinv.data.measurements import read_measurements
    from spinv.data.multicoil import estimate_sensitivities
    from spinv.problems import mri_problem
    from spinv.reconstruction import ReconstructionOptions, reconstruct

    out = tmp_path / "tv.npy"
    assert main(["reconstruct", "--measurements", str(two_slices), "--method", "tv", "--alpha",
                 "0.01", "--iterations", "30", "--calibration", "12", "--out", str(out)]) == 0
    assert "2 slice(s), 4 coils" in capsys.readouterr().out
    got = np.load(out)
    meas = read_measurements(two_slices)
    maps = estimate_sensitivities(meas.y, meas.mask, 12)
    for i in range(2):
        problem = mri_problem((32, 28), mask=meas.mask, sensitivities=maps[i])
        expected = reconstruct(problem, meas.y[i : i + 1],
                               ReconstructionOptions("tv", alpha=0.01, iterations=30))
        assert np.allclose(got[i], (expected * meas.scale)[0, 0].numpy(), atol=1e-5)
    # different slices: different maps (estimated per slice), so slice 1 is not slice 0 halved
    assert not torch.equal(maps[0], maps[1])


def test_errors_name_the_option(two_slices, tmp_path, capsys):
    code = main(["reconstruct", "--measurements", str(two_slices), "--method", "zero-filled",
                 "--out", str(tmp_path / "a.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "'rss'" in err and err.count("\n") == 1
    code = main(["reconstruct", "--measurements", str(two_slices), "--method", "rss",
                 "--calibration", "40", "--out", str(tmp_path / "b.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "--calibration 40" in err and err.count("\n") == 1
    code = main(["reconstruct", "--measurements", str(two_slices), "--method", "tv",
                 "--out", str(tmp_path / "c.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "--noise" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_simulate_coils_then_reconstruct_with_tv_and_a_learned_model(tmp_path, capsys,
                                                                     monkeypatch):
    """`spinv simulate --coils N` writes multi-coil data carrying its SENSE problem; the CLI
    reconstructs it with rss, TV, PnP (shipped denoiser) and an LPG model trained (a few steps)
    for that problem, and a model of another coil count is refused."""
    from spinv.training import parse_config, train

    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))
    image = np.zeros((16, 16), np.float32)
    image[4:12, 5:11] = 1.0
    np.save(tmp_path / "x.npy", image)
    assert main(["simulate", "--problem", "mri", "--input", str(tmp_path / "x.npy"), "--mask",
                 "lines", "--rate", "0.5", "--noise", "0.01", "--coils", "3", "--out",
                 str(tmp_path / "y.npz")]) == 0
    with np.load(tmp_path / "y.npz") as z:
        assert z["y"].shape == (1, 3, 16, 16)
    psnr = {}
    for method in ("rss", "tv"):
        assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method",
                     method, "--alpha", "0.01", "--out", str(tmp_path / f"{method}.npy")]) == 0
        psnr[method] = _psnr(capsys.readouterr().out)
    assert psnr["tv"] > psnr["rss"]
    for method in ("pnp-pgd", "pnp-admm"):  # the shipped DnCNN denoiser with the SENSE operator
        assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method", method,
                     "--model", "denoise-dncnn-s0.05", "--iterations", "5", "--out",
                     str(tmp_path / f"{method}.npy")]) == 0
        assert np.isfinite(np.load(tmp_path / f"{method}.npy")).all()
    common = {"data": {"dataset": "brain-t1", "n_train": 4, "val_size": 2},
              "train": {"steps": 2, "batch_size": 2, "checkpoint_every": 2, "num_threads": 1,
                        "device": "cpu"}, "model": {"name": "lpg", "width": 4, "iterations": 2}}
    for coils in (3, 2):
        problem = {"kind": "mri", "image_size": 16, "noise_sigma": 0.01, "coils": coils,
                   "mask": {"pattern": "lines", "rate": 0.5, "seed": 0}}
        train(parse_config({"problem": problem, **common}), tmp_path / f"lpg{coils}",
              progress=False)
    assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method", "lpg",
                 "--model", str(tmp_path / "lpg3"), "--out", str(tmp_path / "lpg.npy")]) == 0
    assert np.isfinite(np.load(tmp_path / "lpg.npy")).all()
    capsys.readouterr()
    code = main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method", "lpg",
                 "--model", str(tmp_path / "lpg2"), "--out", str(tmp_path / "bad.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "coils.n_coils 2 vs 3" in err and err.count("\n") == 1
