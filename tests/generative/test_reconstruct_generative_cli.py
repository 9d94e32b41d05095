"""``spinv reconstruct --method generative``: a VAE run (trained here for a few steps through
the zoo recipe, :mod:`spinv.generative.zoo_vae`) applied to spinv measurement files through the
CLI (``spinv.cli.main``, the console entry point with its error mapping, rather than typer's
CliRunner, which bypasses it), checked against the in-process API; a VAE of the wrong image size
and k-space of unknown noise level are refused; the reconstruction approaches the least-squares
solution as alpha -> 0; and the u-gradient of the learned covariance energy agrees with finite
differences."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from spinv.cli import main
from spinv.generative.zoo_vae import ZooTrain, ZooVAEConfig, stage_config, train_zoo_vae
from spinv.problems import mri_problem
from spinv.reconstruction import ReconstructionOptions, reconstruct
from spinv.training import load_model, parse_config
from spinv.training.config import ProblemConfig

SIZE = 16


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A 16x16 VAE with a banded-precision head, 4 + 3 training steps."""
    cfg = ZooVAEConfig(name="tiny", problem=ProblemConfig(kind="mri", image_size=SIZE,
                                                          noise_sigma=0.02),
                       model=dataclasses.replace(ZooVAEConfig().model, latent_dim=4, width=4,
                                                 radius=1),
                       train=ZooTrain(mean_steps=4, cov_steps=3, batch_size=4))
    return train_zoo_vae(cfg, tmp_path_factory.mktemp("vae") / "tiny", progress=False)


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _measurements(path, size: int, n: int = 2, noise: float = 0.02):
    """A spinv .npz with ``n`` brain-like slices of ``size`` and their problem."""
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices

    x = prepare_slices(load_dataset("brain-t1", "test")[:n], size)
    problem = mri_problem((size, size), "variable-density", 0.3, noise, seed=0)
    y = problem.simulate(x, seed=1)
    np.savez(path, y=y.numpy(), ground_truth=x.numpy(), problem=json.dumps(problem.to_dict()))
    return problem, y, x


def test_run_config_is_an_experiment_config_and_loads(vae_run):
    model, cfg = load_model(vae_run)
    assert cfg.model.name == "gaussian-vae" and model.kind == "precision"
    assert model.image_size == SIZE
    # the mean stage is its own run of the same catalogue model
    mean, _ = load_model(vae_run.parent / "tiny-mean")
    assert mean.kind == "identity"
    # the stage config round-trips through the training config parser
    cfg2 = ZooVAEConfig(problem=ProblemConfig(kind="mri"))
    assert parse_config(stage_config(cfg2, "mean")).train.lr_schedule == "cosine-torch"


@pytest.mark.parametrize("prior", ["mean", "covariance", "range"])
def test_cli_matches_in_process_api(vae_run, tmp_path, capsys, prior):
    problem, y, _ = _measurements(tmp_path / "m.npz", SIZE)
    out = tmp_path / "r.npy"
    code, output = _cli(["reconstruct", "--measurements", str(tmp_path / "m.npz"),
                         "--method", "generative", "--prior", prior, "--alpha", "0.3",
                         "--model", str(vae_run), "--out", str(out)], capsys)
    assert code == 0, output
    assert "generative: PSNR" in output
    expected = reconstruct(problem, y, ReconstructionOptions("generative", 0.3,
                                                             model=str(vae_run), prior=prior))
    got = np.load(out)
    assert got.shape[0] == 2
    np.testing.assert_allclose(got.reshape(expected.shape), expected.numpy(), atol=1e-5)


def test_mismatched_image_size_is_refused(vae_run, tmp_path, capsys):
    _measurements(tmp_path / "m32.npz", 2 * SIZE, n=1)
    code, output = _cli(["reconstruct", "--measurements", str(tmp_path / "m32.npz"),
                         "--method", "generative", "--alpha", "1",
                         "--model", str(vae_run), "--out", str(tmp_path / "r.npy")], capsys)
    assert code == 2
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output
    assert "16x16" in errors[0] and "32x32" in errors[0] and "--size 16" in errors[0]
    assert not (tmp_path / "r.npy").exists()


def test_unknown_noise_is_refused(vae_run, tmp_path, capsys):
    """k-space without a recorded noise level: the data term 1/(2 sigma^2) is undefined."""
    _, y, _ = _measurements(tmp_path / "m.npz", SIZE, n=1)
    np.save(tmp_path / "mask.npy", np.ones((SIZE, SIZE), np.float32))
    import h5py

    with h5py.File(tmp_path / "k.h5", "w") as f:
        f["kspace"] = np.fft.ifftshift(y.numpy()[:, 0], axes=(-2, -1))
    code, output = _cli(["reconstruct", "--measurements", str(tmp_path / "k.h5"),
                         "--method", "generative", "--alpha", "1",
                         "--model", str(vae_run), "--out", str(tmp_path / "r.npy")], capsys)
    assert code == 2, output
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "--noise" in errors[0], output


def _real_least_squares(operator, y: torch.Tensor) -> torch.Tensor:
    """A minimiser of ||Au - y|| over real images u, from the dense real matrix [Re A; Im A]
    (numpy lstsq, float64): an independent reference."""
    n = SIZE * SIZE
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, SIZE, SIZE)
    cols = operator(basis.to(torch.complex128)).reshape(n, -1).T
    mat = torch.cat([cols.real, cols.imag]).numpy()
    rhs = torch.cat([y.flatten().real, y.flatten().imag]).double().numpy()
    sol = np.linalg.lstsq(mat, rhs, rcond=None)[0]
    return torch.from_numpy(sol).reshape(1, 1, SIZE, SIZE)


@pytest.mark.parametrize("prior", ["mean", "covariance"])
def test_alpha_to_zero_approaches_least_squares(vae_run, tmp_path, prior):
    """alpha -> 0: the reconstruction approaches the unregularised least-squares solution set
    over real images, A u_alpha -> A u_LS (the unsampled frequencies stay the prior's, so it is
    not the zero-filled image), and the residual falls monotonically to the least-squares one."""
    problem, y, _ = _measurements(tmp_path / "m.npz", SIZE, n=1)
    op = problem.operator
    u_ls = _real_least_squares(op, y)
    a_ls = op(u_ls.to(torch.complex64))
    gaps, res = [], []
    for alpha in (1.0, 1e-1, 1e-2, 1e-4):  # float32: below ~1e-5 the gap is rounding
        u = reconstruct(problem, y, ReconstructionOptions("generative", alpha,
                                                          model=str(vae_run), prior=prior))
        au = op(u.to(torch.complex64))
        gaps.append(float((au - a_ls).norm() / a_ls.norm()))
        res.append(float((au - y).norm()))
    assert all(b <= a + 1e-6 for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[-1] < 1e-5 < gaps[0], gaps
    assert res[-1] == pytest.approx(float((a_ls - y).norm()), rel=1e-4)


def test_covariance_energy_gradient_matches_finite_differences(vae_run):
    """grad_u E(u, z) = Sigma(z)^{-1}(u - G(z)) (what the u-step solves with) against central
    differences of the energy of the trained banded-precision head, in float64."""
    from spinv.generative.regularisers import CovarianceRegulariser

    model, _ = load_model(vae_run)
    model = model.double()
    reg = CovarianceRegulariser(model)
    g = torch.Generator().manual_seed(0)
    u = torch.rand(2, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    z = torch.randn(2, model.latent_dim, generator=g, dtype=torch.float64)
    d = torch.randn(2, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    with torch.no_grad():
        grad = reg.gradient_u(u, z)
        h = 1e-5
        fd = (reg.energy(u + h * d, z) - reg.energy(u - h * d, z)) / (2 * h)
    analytic = (grad * d).flatten(1).sum(1)
    torch.testing.assert_close(fd, analytic, rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # tunes alpha and reconstructs the 22 test slices twice (~10 CPU-s)
def test_zoo_release_and_verify_of_a_vae(vae_run, tmp_path):
    """A VAE run becomes a zoo entry whose held-out figure is the covariance-prior
    reconstruction against zero filling (tuned alpha recorded), re-measured by verify."""
    from spinv.zoo import release, verify

    entry = release(vae_run, "tiny-vae", "test VAE", root=tmp_path)
    metrics = entry.provenance["release_metrics"]
    assert metrics["generative"]["prior"] == "covariance"
    assert str(metrics["generative"]["alpha"]) in {"0.01", "0.03", "0.1", "0.3", "1.0"}
    assert (entry.path / "recipe.json").is_file()
    rows = verify("tiny-vae", root=tmp_path)
    assert [r["metric"] for r in rows] == ["psnr", "ssim", "baseline_psnr", "baseline_ssim"]
    assert all(r["ok"] for r in rows), rows
    # `spinv models train NAME` path: the recipe retrains the same weights (same seeds)
    from spinv.generative.zoo_vae import retrain

    retrain(entry, tmp_path / "again")
    a, _ = load_model(vae_run)
    b, _ = load_model(tmp_path / "again")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_shipped_vae_prior_beats_zero_filling(tmp_path, capsys):
    """The zoo's vae-brain32 through the CLI on two held-out test slices (32x32, variable
    density 25 %, sigma 0.01, alpha 0.3 as tuned at release): far above zero filling."""
    from spinv.data import load_dataset
    from spinv.generative.train import prepare_slices

    x = prepare_slices(load_dataset("brain-t1", "test")[[5, 15]], 32)
    problem = mri_problem((32, 32), "variable-density", 0.25, 0.01, seed=0)
    np.savez(tmp_path / "m.npz", y=problem.simulate(x, seed=1).numpy(), ground_truth=x.numpy(),
             problem=json.dumps(problem.to_dict()))
    psnr = {}
    for method in ("zero-filled", "generative"):
        code, output = _cli(["reconstruct", "--measurements", str(tmp_path / "m.npz"),
                             "--method", method, "--model", "vae-brain32", "--alpha", "0.3",
                             "--out", str(tmp_path / f"{method}.npy")], capsys)
        assert code == 0, output
        psnr[method] = float(output.split("PSNR ")[1].split(" dB")[0])
    assert psnr["generative"] > psnr["zero-filled"] + 5, psnr
