"""`spinv reconstruct --measurements`: users' data without ground truth (spinv .npz, raw
sinograms, fastMRI k-space), every method family behind one command, trained models refusing
measurements of another problem."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spinv.cli import main
from spinv.data.phantoms import shepp_logan
from spinv.training import parse_config, train

SIZE, ANGLES = 32, 30


def _psnr(out: str) -> float:
    return float(out.split("PSNR")[1].split("dB")[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("meas")
    truth = shepp_logan(SIZE).numpy().reshape(SIZE, SIZE).astype(np.float32)
    np.save(d / "truth.npy", truth)
    assert main(["simulate", "--problem", "ct", "--input", str(d / "truth.npy"), "--angles",
                 str(ANGLES), "--out", str(d / "sim.npz")]) == 0
    with np.load(d / "sim.npz") as z:
        np.save(d / "raw.npy", z["y"][0, 0])
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    common = {"train": {"steps": 3, "batch_size": 2, "checkpoint_every": 3, "num_threads": 1,
                        "device": "cpu"}, "eval": {"batch_size": 2}}
    lpg = {"problem": {"kind": "ct", "image_size": SIZE, "n_angles": ANGLES, "upsample": 2},
           "data": {"dataset": "ct-head", "n_train": 4, "val_size": 2},
           "model": {"name": "lpg", "width": 8, "iterations": 2}, **common}
    den = {"problem": {"kind": "denoise", "image_size": SIZE, "noise_sigma": 0.05},
           "data": {"dataset": "ct-head", "n_train": 4, "val_size": 2},
           "model": {"name": "postprocess-cnn", "width": 4, "depth": 2}, **common}
    train(parse_config(lpg), d / "lpg", progress=False)
    train(parse_config(den), d / "denoiser", progress=False)
    return d


def test_simulated_npz_is_reconstructed_from_its_own_problem(files, capsys):
    out = files / "fbp.npy"
    assert main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "fbp",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ground truth stored in the measurements" in text and np.load(out).shape == (32, 32)
    fbp = _psnr(text)
    assert main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "tv",
                 "--alpha", "0.02", "--out", str(files / "tv.npy")]) == 0
    assert _psnr(capsys.readouterr().out) > fbp


def test_raw_sinogram_with_geometry_options_and_a_reference(files, capsys):
    args = ["reconstruct", "--measurements", str(files / "raw.npy"), "--method", "fbp",
            "--reference", str(files / "truth.npy")]
    assert main(args + ["--out", str(files / "raw.npy.fbp.npy")]) == 0
    raw = _psnr(capsys.readouterr().out)
    assert main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "fbp",
                 "--reference", str(files / "truth.npy"), "--out",
                 str(files / "sim.fbp.npy")]) == 0
    assert abs(_psnr(capsys.readouterr().out) - raw) < 1e-6  # same data, same geometry
    assert np.allclose(np.load(files / "raw.npy.fbp.npy"), np.load(files / "sim.fbp.npy"))
    code = main(args + ["--angles", "40", "--out", str(files / "bad.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --angles 40") and err.count("\n") == 1
    assert not (files / "bad.npy").exists()


def test_a_folder_of_slices_gives_a_stack_and_auto_alpha_needs_the_noise(files, capsys):
    folder = files / "slices"
    folder.mkdir()
    sino = np.load(files / "raw.npy")
    for i in range(3):
        np.save(folder / f"s{i}.npy", sino)
    assert main(["reconstruct", "--measurements", str(folder), "--method", "fbp", "--out",
                 str(files / "stack.npy")]) == 0
    assert np.load(files / "stack.npy").shape == (3, SIZE, SIZE)
    code = main(["reconstruct", "--measurements", str(folder), "--method", "tv", "--out",
                 str(files / "stack-tv.npy")])
    assert code == 2 and "--photons" in capsys.readouterr().err


def test_existing_output_is_kept_without_force(files, capsys):
    out = files / "keep.npy"
    np.save(out, np.arange(3.0))
    code = main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "fbp",
                 "--out", str(out)])
    assert code == 2 and "--force" in capsys.readouterr().err
    assert np.array_equal(np.load(out), np.arange(3.0))


def test_fastmri_kspace_is_cropped_and_matches_the_reference(tmp_path, capsys):
    rng = np.random.default_rng(0)
    img = np.zeros((2, 40, 36), np.complex64)
    img[:, 10:30, 8:28] = 1 + 0.1 * rng.standard_normal((2, 20, 20))
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img, axes=(-2, -1)), norm="ortho"),
                        axes=(-2, -1))
    with h5py.File(tmp_path / "knee.h5", "w") as f:
        f.create_dataset("kspace", data=k)
        f.create_dataset("reconstruction_esc", data=np.abs(img[:, 8:32, 6:30]))
    np.save(tmp_path / "ref.npy", np.abs(img[:, 8:32, 6:30]))
    assert main(["reconstruct", "--measurements", str(tmp_path / "knee.h5"), "--method",
                 "zero-filled", "--reference", str(tmp_path / "ref.npy"), "--out",
                 str(tmp_path / "zf.npy")]) == 0
    out = np.load(tmp_path / "zf.npy")
    assert out.shape == (2, 24, 24) and np.allclose(np.abs(out), np.abs(img[:, 8:32, 6:30]),
                                                    atol=1e-5)
    assert _psnr(capsys.readouterr().out) > 80  # fully sampled: exact up to float32


def test_learned_model_applies_to_its_problem_and_refuses_another(files, runs, capsys,
                                                                  tmp_path):
    assert main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "lpg",
                 "--model", str(runs / "lpg"), "--out", str(tmp_path / "lpg.npy")]) == 0
    assert np.isfinite(np.load(tmp_path / "lpg.npy")).all()
    capsys.readouterr()
    truth = files / "truth.npy"
    assert main(["simulate", "--problem", "ct", "--input", str(truth), "--angles", "20",
                 "--out", str(tmp_path / "other.npz")]) == 0
    code = main(["reconstruct", "--measurements", str(tmp_path / "other.npz"), "--method", "lpg",
                 "--model", str(runs / "lpg"), "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "n_angles 30 vs 20" in err and err.count("\n") == 1
    code = main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "lpd",
                 "--model", str(runs / "lpg"), "--out", str(tmp_path / "y.npy")])
    assert code == 2 and "--method lpg" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "y.npy").exists()


def test_pnp_runs_with_a_trained_denoiser_and_refuses_a_reconstructor(files, runs, capsys,
                                                                      tmp_path):
    for method in ("pnp-pgd", "pnp-admm"):
        assert main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", method,
                     "--model", str(runs / "denoiser"), "--pnp-weight", "0.5", "--iterations",
                     "5", "--out", str(tmp_path / f"{method}.npy")]) == 0
        assert np.isfinite(np.load(tmp_path / f"{method}.npy")).all()
    capsys.readouterr()
    code = main(["reconstruct", "--measurements", str(files / "sim.npz"), "--method", "pnp-pgd",
                 "--model", str(runs / "lpg"), "--out", str(tmp_path / "z.npy")])
    assert code == 2 and "denoiser" in capsys.readouterr().err
