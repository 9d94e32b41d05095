"""Generative reconstruction on multi-coil (SENSE) MRI: the operator-generic u-step.

:math:`N=\\mathrm{Re}A^*A` of :class:`~spinv.operators.mri_multicoil.MultiCoilFourier` is no
circular convolution, so the u-step solves :math:`(aN+bI)u=r` by CG
(:class:`~spinv.generative.reconstruct.OperatorNormal`); single-coil keeps the exact FFT solve."""

from __future__ import annotations

import torch

from spinv.generative.reconstruct import (
    FourierDiagonalNormal,
    OperatorNormal,
    normal_operator,
)
from spinv.problems import mri_problem

S = 16


def test_single_coil_keeps_the_fourier_solve_and_cg_agrees_with_it():
    A = mri_problem(S, "lines", 0.3, 0.01, seed=0).operator
    assert isinstance(normal_operator(A, (S, S), torch.float64), FourierDiagonalNormal)
    exact = FourierDiagonalNormal.from_operator(A, (S, S), torch.float64)
    cg = OperatorNormal(A, (S, S), torch.float64, cg_iterations=200)
    rhs = torch.randn(3, 1, S, S, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    ref = exact.solve(rhs, 2.0, b)
    assert (cg.solve(rhs, 2.0, b) - ref).norm() / ref.norm() < 1e-5


def test_multicoil_solve_is_exact_for_the_sense_normal_operator():
    A = mri_problem(S, "lines", 0.3, 0.01, seed=0, coils=4).operator
    N = normal_operator(A, (S, S), torch.float64, cg_iterations=200)
    assert isinstance(N, OperatorNormal)
    u = torch.randn(2, 1, S, S, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = A.adjoint(A(u)).real
    assert (N.apply(u) - ref).norm() / ref.norm() < 1e-12
    rhs = 1.5 * ref + 0.3 * u
    x = N.solve(rhs, 1.5, 0.3)
    assert (x - u).norm() / u.norm() < 1e-5


def test_generative_covariance_on_multicoil_beats_rss():
    from spinv.generative.from_model import GenerativeReconstructor, _tuning_images
    from spinv.metrics import psnr
    from spinv.reconstruction import load_reconstruction_model

    torch.manual_seed(0)
    problem = mri_problem(32, "lines", 0.25, 0.01, seed=0, coils=4)
    vae = load_reconstruction_model("vae-brain32").network
    x = _tuning_images(problem, 2)
    y = problem.simulate(x, seed=5)
    rec = GenerativeReconstructor(vae, problem.operator, "covariance", 0.1, problem.noise.sigma)
    u = rec(y)
    assert u.shape == x.shape and torch.isfinite(u).all()
    gen = psnr(u, x, data_range=1.0)
    rss = psnr(problem.operator.rss(y), x, data_range=1.0)
    assert (gen > rss + 3.0).all(), (gen, rss)


def test_cli_simulate_coils_then_generative_reconstruct(tmp_path, capsys):
    """`spinv simulate --coils 4` of a 32x32 validation slice, then `spinv reconstruct
    --method generative --model vae-brain32` on it beats rss."""
    import numpy as np

    from spinv.cli import main
    from spinv.generative.from_model import _tuning_images

    x = _tuning_images(mri_problem(32, "lines", 0.25, 0.01), 1)[0, 0].numpy()
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", "--problem", "mri", "--input", str(tmp_path / "x.npy"), "--mask",
                 "lines", "--rate", "0.25", "--noise", "0.01", "--coils", "4", "--out",
                 str(tmp_path / "y.npz")]) == 0
    psnr = {}
    for method in ("rss", "generative"):
        assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method",
                     method, "--model", "vae-brain32", "--prior", "covariance", "--alpha", "0.1",
                     "--out", str(tmp_path / f"{method}.npy")]) == 0
        psnr[method] = float(capsys.readouterr().out.split("PSNR")[1].split("dB")[0])
    assert psnr["generative"] > psnr["rss"] + 3.0, psnr
