"""Issue 13's end-to-end check: a sinogram and a fastMRI-style k-space file written from bundled
data are reconstructed through the CLI with every method family (shipped models for the learned
ones), and each result equals the in-process API's."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.data import load_dataset
from spinv.reconstruction import ReconstructionOptions, reconstruct

CT_METHODS = [("fbp", []), ("tv", ["--alpha", "0.05", "--iterations", "40"]),
              ("lpg", ["--model", "ct64-lpg-c4"]), ("lpd", ["--model", "ct64-lpd-c4"])]


@pytest.fixture(scope="module")
def sinogram(tmp_path_factory):
    from spinv.problems import ct_problem

    x = torch.from_numpy(load_dataset("ct-head", "test")[:1])[:, None]
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="area")
    y = ct_problem(64, 50, photons=1e4, upsample=2).simulate(x, seed=0)
    path = tmp_path_factory.mktemp("ct") / "sinogram.npy"
    np.save(path, y[0, 0].numpy())
    return path, y


@pytest.mark.parametrize("method, extra", CT_METHODS, ids=[m for m, _ in CT_METHODS])
def test_raw_sinogram_through_the_cli_equals_the_api(sinogram, tmp_path, method, extra):
    from spinv.problems import ct_problem

    path, y = sinogram
    out = tmp_path / "r.npy"
    assert main(["reconstruct", "--measurements", str(path), "--angles", "50", "--detectors",
                 "91", "--method", method, *extra, "--out", str(out)]) == 0
    problem = ct_problem(64, 50, photons=None, upsample=1, n_detectors=91)
    opts = dict(zip(extra[::2], extra[1::2], strict=True))
    options = ReconstructionOptions(
        method, alpha=float(opts["--alpha"]) if "--alpha" in opts else None,
        iterations=int(opts.get("--iterations", 300)), model=opts.get("--model"))
    expected = reconstruct(problem, y, options, noise_known=False)
    assert np.allclose(np.load(out), expected[0, 0].numpy(), atol=1e-5)


def test_fastmri_kspace_through_the_cli_equals_the_api(tmp_path):
    from spinv.data.measurements import center_crop, read_fastmri_kspace
    from spinv.problems import mri_problem

    image = load_dataset("brain-t1", "test")[:1].astype(np.complex64)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=(-2, -1)), norm="ortho"),
                        axes=(-2, -1))
    mask = np.zeros(k.shape[-1], np.float32)
    mask[::4] = 1
    mask[k.shape[-1] // 2 - 8 : k.shape[-1] // 2 + 8] = 1
    path = tmp_path / "k.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k * mask)
        f.create_dataset("mask", data=mask)
    meas = read_fastmri_kspace(path)
    problem = mri_problem(tuple(k.shape[-2:]), mask=meas.mask, noise=0.0)
    for method, extra in (("zero-filled", []), ("tv", ["--alpha", "0.002", "--iterations", "40"])):
        out = tmp_path / f"{method}.npy"
        assert main(["reconstruct", "--measurements", str(path), "--method", method, *extra,
                     "--out", str(out)]) == 0
        options = ReconstructionOptions(method, alpha=0.002 if extra else None, iterations=40)
        expected = center_crop(reconstruct(problem, meas.y, options), meas.crop) * meas.scale
        assert np.allclose(np.load(out), expected[0, 0].numpy(), atol=1e-5)
    zero_filled = np.abs(np.load(tmp_path / "zero-filled.npy"))
    reference = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k * mask), norm="ortho")))
    assert np.allclose(zero_filled, reference[0], atol=1e-5)  # the fastMRI reference recon
