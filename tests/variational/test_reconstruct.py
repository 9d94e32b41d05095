"""Reconstruction recipes: MRI and CT improve on the naive reconstructions, alpha tuning."""

import numpy as np
import pytest
import torch

from spinv.metrics import psnr
from spinv.operators import Identity, SubsampledFourier
from spinv.operators.sampling import variable_density
from spinv.variational.reconstruct import (
    METHODS,
    VariationalOptions,
    make_regulariser,
    reconstruct_variational,
    tune_alpha,
    tv_pdhg_iterates,
)


def _brain(n=64):
    try:
        from spinv.data import load_dataset

        x = torch.from_numpy(load_dataset("brain-t1", "test")[:1])[:, None]
        return torch.nn.functional.interpolate(x, size=(n, n), mode="area")
    except (ImportError, ValueError, FileNotFoundError):  # pragma: no cover - fallback
        from spinv.data.phantoms import shepp_logan

        return shepp_logan(n)


def _mri(n=64, rate=0.25, sigma=0.01, seed=0):
    x = _brain(n)
    A = SubsampledFourier(variable_density((n, n), rate, seed=seed))
    g = torch.Generator().manual_seed(seed)
    noise = torch.complex(torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g))
    y = A(x) + sigma / np.sqrt(2) * A(noise)
    return A, y, x


def test_tv_mri_beats_zero_filling_at_25_percent():
    A, y, x = _mri(64)
    zf = A.adjoint(y)
    u = reconstruct_variational(A, y, "tv", alpha=3e-3, options=VariationalOptions(iterations=300))
    assert u.dtype == torch.complex64 and u.shape == x.shape
    p_zf, p_tv = float(psnr(zf.abs(), x)), float(psnr(u.abs(), x))
    assert p_tv > p_zf + 3.0, (p_zf, p_tv)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "tv"])
def test_every_method_improves_on_zero_filling(method):
    # H1 only smooths: it helps where noise dominates (measured: no gain at sigma=0.02)
    sigma = 0.1 if method == "h1" else 0.02
    A, y, x = _mri(32, rate=0.3, sigma=sigma, seed=1)
    zf = float(psnr(A.adjoint(y).abs(), x))
    alpha = {"h1": 0.3, "tgv": 3e-3, "wavelet": 1e-2, "tv-smooth": 3e-3, "dtv": 3e-3}[method]
    ref = x if method == "dtv" else None
    u, hist = reconstruct_variational(
        A, y, method, alpha, VariationalOptions(iterations=150), reference=ref,
        return_history=True,
    )
    assert float(psnr(u.abs(), x)) > zf + 0.5
    assert hist.iterations >= 1 and np.isfinite(hist.objective).all()


def test_ct_tv_beats_fbp():
    ct = pytest.importorskip("spinv.operators.ct")
    from spinv.data.phantoms import shepp_logan

    n = 32
    A = ct.ParallelBeamCT(n, n_angles=30, cache=False)
    x = shepp_logan(n)
    g = torch.Generator().manual_seed(0)
    y = A(x)
    y = y + 0.02 * float(y.abs().max()) * torch.randn(y.shape, generator=g)
    fbp = A.fbp(y)
    u = reconstruct_variational(A, y, "tv", 0.1, VariationalOptions(iterations=300,
                                                                    nonnegative=True))
    assert float(u.min()) >= 0
    assert float(psnr(u, x)) > float(psnr(fbp, x)) + 2.0


def test_solvers_agree_on_smoothed_tv():
    A, y, _ = _mri(16, rate=0.4, seed=2)
    y = y.to(torch.complex128)
    kw = dict(method="tv-smooth", alpha=1e-2, gamma=0.2)

    def options(**o):
        return VariationalOptions(epsilon=1e-2, tol=1e-12, **o)

    u_pd = reconstruct_variational(A, y, options=options(iterations=1500), **kw)
    u_nt = reconstruct_variational(A, y, options=options(iterations=100, solver="newton-cg"),
                                   **kw)
    u_fi = reconstruct_variational(A, y, options=options(iterations=1000, solver="fista"), **kw)
    assert (u_pd - u_nt).abs().max() < 1e-5
    assert (u_fi - u_nt).abs().max() < 1e-4


def test_tv_pdhg_iterates_match_reconstruct():
    A, y, _ = _mri(16, seed=3)
    its = list(tv_pdhg_iterates(A, y, alpha=1e-2, iterations=25))
    u = reconstruct_variational(A, y, "tv", 1e-2, VariationalOptions(iterations=25, tol=0.0))
    assert len(its) == 25
    assert torch.allclose(its[-1], u)
    assert not torch.allclose(its[0], its[-1])


def test_tune_alpha_maximises_validation_psnr():
    g = torch.Generator().manual_seed(5)
    clean = torch.zeros(2, 1, 16, 16)
    clean[:, :, 4:12, 3:13] = 1.0
    clean[1, :, 6:9, 6:9] = 0.3

    def simulate(images):
        return Identity(), images + 0.15 * torch.randn(images.shape, generator=g)

    grid = [1e-3, 1e-2, 1e-1, 1.0]
    alpha, info = tune_alpha(
        simulate, clean, "tv", grid=grid, golden_iterations=5, return_history=True,
        options=VariationalOptions(iterations=150),
    )
    assert len(info["alphas"]) > len(grid)  # the golden-section search evaluated more points
    best = int(np.argmax(info["psnr"]))
    assert alpha == info["alphas"][best]
    assert 1e-2 <= alpha <= 1.0
    assert max(info["psnr"]) >= max(info["psnr"][info["alphas"].index(a)] for a in grid)


def test_bad_arguments():
    A = Identity()
    y = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="method"):
        reconstruct_variational(A, y, "l0", alpha=0.1)
    with pytest.raises(ValueError, match="reference"):
        make_regulariser("dtv", 0.1)
    with pytest.raises(ValueError, match="solver"):
        VariationalOptions(solver="admm")
    with pytest.raises(ValueError, match="tgv"):
        reconstruct_variational(A, y, "tgv", 0.1, VariationalOptions(solver="fista"))
    for bad in (dict(iterations=-1), dict(tol=-1.0), dict(epsilon=-0.1), dict(op_norm=0.0),
                dict(step_rule="fast")):
        with pytest.raises(ValueError, match=f"VariationalOptions.{next(iter(bad))}"):
            VariationalOptions(**bad)
    with pytest.raises(ValueError, match="nonnegative"):  # only PDHG constrains u >= 0
        VariationalOptions(nonnegative=True, solver="fista")
    with pytest.raises(TypeError, match="VariationalOptions"):  # knobs are not keywords
        reconstruct_variational(A, y, "tv", alpha=0.1, iterations=3)
    with pytest.raises(ValueError, match="alpha"):
        reconstruct_variational(A, y, "tv", alpha=-1.0)
    with pytest.raises(TypeError, match="unexpected"):
        reconstruct_variational(A, y, "tv", alpha=0.1, foo=1)
    with pytest.raises(ValueError, match="grid"):
        tune_alpha(lambda x: (A, x), y, "tv", grid=[-1.0])
