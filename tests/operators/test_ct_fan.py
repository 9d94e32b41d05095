"""Tests for the fan-beam ray transform: exact adjoint, norm, analytic line integrals of
ellipses, the parallel-beam equivalence of its rays, weighted FBP (full and short scan)."""

import math

import numpy as np
import pytest
import torch

from spinv.data.phantoms import shepp_logan
from spinv.operators import ParallelBeamCT
from spinv.operators.ct import fine_grid_sinogram
from spinv.operators.ct_fan import FanBeamCT, parker_weights

# (value, half-axis a, half-axis b, x0, y0, rotation) in pixel units, image centred at 0
ELLIPSES = [(1.0, 25.0, 18.0, 2.0, -3.0, 0.3), (0.5, 8.0, 5.0, -6.0, 7.0, 1.0)]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))


def _ellipse_image(n: int, ellipses, supersample: int = 4) -> torch.Tensor:
    """Pixel averages (``supersample``² points per pixel) of a sum of ellipses."""
    m = n * supersample
    coords = (np.arange(m) - (m - 1) / 2) / supersample
    xs, ys = coords[None, :], -coords[:, None]
    img = np.zeros((m, m))
    for v, a, b, x0, y0, phi in ellipses:
        c, s = math.cos(phi), math.sin(phi)
        u, w = (c * (xs - x0) + s * (ys - y0)) / a, (-s * (xs - x0) + c * (ys - y0)) / b
        img += v * (u * u + w * w <= 1)
    img = img.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return torch.from_numpy(img).float()[None, None]


def _ellipse_line_integrals(theta: np.ndarray, s: np.ndarray, ellipses) -> np.ndarray:
    """Exact integrals over the lines x.omega_theta = s (Kak & Slaney 1988, §3.2:
    2 v a b sqrt(a_t^2 - t^2) / a_t^2, a_t^2 = a^2 cos^2(theta-phi) + b^2 sin^2(theta-phi))."""
    out = np.zeros(np.broadcast(theta, s).shape)
    for v, a, b, x0, y0, phi in ellipses:
        a2 = (a * np.cos(theta - phi)) ** 2 + (b * np.sin(theta - phi)) ** 2
        t = s - (x0 * np.cos(theta) + y0 * np.sin(theta))
        out += np.where(t * t < a2, 2 * v * a * b * np.sqrt(np.clip(a2 - t * t, 0, None)) / a2,
                        0.0)
    return out


def _rays(A: FanBeamCT) -> tuple[np.ndarray, np.ndarray]:
    theta = A.angles.double().numpy()[:, None] + A.fan_angles[None, :]
    return theta, np.broadcast_to(A.source_distance * np.sin(A.fan_angles), theta.shape)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((x - ref) ** 2).mean()))


@pytest.mark.parametrize("n, views, kwargs", [
    (16, 7, {}), (33, 40, {"detector_type": "flat"}), (24, 20, {"angular_range": 4.0}),
    (20, 9, {"source_distance": 15.0, "detector_distance": 40.0, "n_detectors": 31,
             "detector_spacing": 1.7, "pixel_size": 0.8}),
])
def test_adjointness(n, views, kwargs):
    A = FanBeamCT(n, views, **kwargs)
    for seed in range(3):
        assert A.adjoint_test((2, 1, n, n), seed=seed) <= 1e-5
    x = torch.randn(1, 1, n, n, dtype=torch.float64)
    y = torch.randn(1, 1, *A.sinogram_shape, dtype=torch.float64)
    lhs, rhs = (A(x) * y).sum(), (x * A.adjoint(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * float(A(x).norm() * y.norm())


def test_defaults_geometry_and_norm():
    A = FanBeamCT(12, 9)
    assert (A.source_distance, A.detector_distance, A.detector_spacing) == (24.0, 48.0, 2.0)
    # the detector covers the circumscribed circle: half fan angle >= asin(r / D)
    assert A.half_fan_angle >= math.asin(12 / math.sqrt(2) / 24)
    assert torch.allclose(A.angles.double(), torch.linspace(0, 2 * math.pi, 10)[:-1].double())
    sigma = np.linalg.svd(A.matrix.toarray().astype(np.float64), compute_uv=False)[0]
    est = A.norm(iterations=500, tol=1e-9)
    assert est <= sigma * (1 + 1e-4) and abs(est - sigma) / sigma < 1e-3


@pytest.mark.parametrize("detector_type", ["equiangular", "flat"])
def test_line_integrals_of_ellipses_match_analytic_values(detector_type):
    """The discrete fan-beam data of a pixelised ellipse phantom agree with the exact line
    integrals of the continuous ellipses (a real geometry check: a wrong fan angle, offset or
    detector mapping moves them by far more)."""
    A = FanBeamCT(64, 45, detector_type=detector_type)
    exact = _ellipse_line_integrals(*_rays(A), ELLIPSES)
    got = A(_ellipse_image(64, ELLIPSES))[0, 0].double().numpy()
    rel = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    assert rel < 0.02, rel  # measured 0.0128 (equiangular), 0.0135 (flat)
    # shifting the bins by half a bin is detected
    shifted = A.source_distance * np.sin(A.fan_angles + 0.5 * (A.fan_angles[1] - A.fan_angles[0]))
    wrong = _ellipse_line_integrals(_rays(A)[0], shifted[None, :], ELLIPSES)
    assert np.linalg.norm(got - wrong) / np.linalg.norm(exact) > 2 * rel


def test_rays_are_parallel_beam_rays():
    """Every fan ray (beta, gamma) is the parallel ray (beta + gamma, D sin gamma): one fan bin
    equals a one-detector parallel operator at that angle and offset."""
    A = FanBeamCT(20, 5, detector_type="flat")
    x = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    y = A(x)[0, 0]
    for view, k in ((0, 3), (2, 10), (4, A.n_detectors - 2)):
        theta = float(A.angles.double()[view]) + A.fan_angles[k]
        s = A.source_distance * math.sin(A.fan_angles[k])
        # a parallel operator with an odd bin count centred at s via its spacing
        P = ParallelBeamCT(20, angles=[theta], n_detectors=3, detector_spacing=abs(s) or 1.0)
        expected = P(x)[0, 0, 0, 2 if s > 0 else 1 if s == 0 else 0]
        assert torch.allclose(y[view, k], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("detector_type", ["equiangular", "flat"])
def test_fbp_quality_and_agreement_with_parallel_fbp(detector_type):
    """Noiseless fan data of the Shepp-Logan phantom (projected on a 2x finer grid, no inverse
    crime): weighted FBP reaches the parallel-beam FBP's quality and is close to it."""
    n = 48
    x = shepp_logan(n)
    P = ParallelBeamCT(n, 120)
    ref = P.fbp(fine_grid_sinogram(x, P.refined(2)))
    A = FanBeamCT(n, 240, detector_type=detector_type)
    rec = A.fbp(fine_grid_sinogram(x, A.refined(2)))
    assert _psnr(rec, x) >= _psnr(ref, x) - 0.5  # measured: fan 20.1 / 20.0, parallel 20.2 dB
    assert _psnr(rec, ref) >= 30.0  # measured 37.1 (equiangular), 32.4 (flat) dB
    # the level is right: the mean over the head matches the parallel FBP's to 1 %
    body = x > 0.15
    assert abs(float(rec[body].mean() / ref[body].mean()) - 1) < 0.01


def test_short_scan_fbp_with_parker_weights():
    n = 48
    x = _ellipse_image(n, [(1.0, 18.0, 12.0, 2.0, -3.0, 0.3), (0.5, 6.0, 4.0, -5.0, 5.0, 1.0)])
    full = FanBeamCT(n, 240)
    scan = math.pi + 2 * full.half_fan_angle + 0.05
    short = FanBeamCT(n, 140, angular_range=scan)
    r_full = full.fbp(full(x))
    r_short = short.fbp(short(x))
    assert _psnr(r_short, r_full) >= 40.0  # measured 49.7 dB
    w = parker_weights(short.angles.double().numpy(), short.fan_angles, scan)
    assert w.min() >= 0 and w.max() <= 1
    too_short = FanBeamCT(n, 60, angular_range=math.pi)
    with pytest.raises(ValueError, match="short scan"):
        too_short.fbp(too_short(x))


def test_parker_weights_sum_to_one_over_conjugate_rays():
    gammas = np.linspace(-0.3, 0.3, 7)
    scan = math.pi + 2 * 0.35
    betas = np.array([0.2, 0.5, 1.0])
    w = parker_weights(betas, gammas, scan)
    conj = np.array([parker_weights(np.array([b + math.pi + 2 * g]), np.array([-g]), scan)[0, 0]
                     for b in betas for g in gammas]).reshape(w.shape)
    assert np.allclose(w + conj, 1.0, atol=1e-12)


def test_fine_grid_and_cache():
    A = FanBeamCT(32, 20, detector_type="flat")
    B = A.refined(2)
    assert (B.n_detectors, B.source_distance, B.pixel_size) == (A.n_detectors, 64.0, 0.5)
    x = _ellipse_image(32, [(1.0, 10.0, 8.0, 1.0, 0.0, 0.2)])
    rel = float((fine_grid_sinogram(x, B) - A(x)).norm() / A(x).norm())
    assert rel < 0.01, rel
    paths = {FanBeamCT(16, 8).cache_path, FanBeamCT(16, 8, detector_type="flat").cache_path,
             FanBeamCT(16, 8, source_distance=20.0).cache_path,
             ParallelBeamCT(16, 8).cache_path}
    assert len(paths) == 4 and all(p.is_file() for p in paths)


@pytest.mark.parametrize("kwargs, word", [
    ({"image_size": 1}, "image_size"),
    ({"image_size": 16, "source_distance": 10.0}, "half-diagonal"),
    ({"image_size": 16, "detector_distance": 20.0}, "detector_distance"),
    ({"image_size": 16, "detector_type": "curved"}, "detector_type"),
    ({"image_size": 16, "angular_range": 7.0}, "angular_range"),
    ({"image_size": 16, "detector_spacing": -1.0}, "detector_spacing"),
    ({"image_size": 16, "n_detectors": 0}, "n_detectors"),
    ({"image_size": 16, "n_detectors": 250, "detector_spacing": 1.0}, "180 degrees"),
])
def test_bad_geometry(kwargs, word):
    with pytest.raises(ValueError, match=word):
        FanBeamCT(**kwargs)


def test_memory_budget_refuses_before_building(monkeypatch):
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "0.001")
    with pytest.raises(ValueError, match="SPINV_MAX_OPERATOR_GIB"):
        FanBeamCT(128, 360)


def test_autograd_uses_exact_transpose_and_fbp_is_differentiable():
    A = FanBeamCT(6, 4, detector_type="flat")
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))
    y = torch.randn(2, 1, *A.sinogram_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A.adjoint, (y,))
    assert torch.autograd.gradcheck(A.fbp, (y,))  # linear in y: an exact Jacobian


@pytest.mark.parametrize("kwargs", [
    {}, {"detector_type": "flat"}, {"pixel_size": 0.5},
    {"source_distance": 60.0, "detector_distance": 100.0, "detector_spacing": 1.3},
    {"source_distance": 60.0, "detector_distance": 100.0, "detector_spacing": 1.3,
     "detector_type": "flat", "pixel_size": 0.8},
    {"angular_range": math.pi + 1.0},
])
def test_fbp_is_in_image_units_for_every_geometry(kwargs):
    """FBP of a disc of 1s is 1 inside, whatever the distances, detector, spacing, pixel size
    or scan range (the weights D cos(gamma), 1/(2 alpha) or 1/(2 tau), 1/L^2 or 1/U^2 and the
    Parker weights all enter; measured 0.9996-1.0002)."""
    n = 64
    yy, xx = np.mgrid[:n, :n]
    r2 = (xx - 31.5) ** 2 + (yy - 31.5) ** 2
    disc = torch.from_numpy((r2 < 20**2).astype(np.float32))[None, None]
    A = FanBeamCT(n, 180, **kwargs)
    rec = A.fbp(A(disc))[0, 0].numpy()
    assert abs(rec[r2 < 15**2].mean() - 1.0) < 0.005


def test_pickle_carries_the_geometry_only():
    import pickle

    A = FanBeamCT(16, 5, detector_type="flat")
    x = torch.rand(2, 1, 16, 16)
    B = pickle.loads(pickle.dumps(A))
    assert torch.equal(B(x), A(x)) and len(pickle.dumps(A)) < 10_000
