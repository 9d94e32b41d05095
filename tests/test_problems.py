"""spinv.problems.Problem: simulation pinned to the operator-level functions it replaces,
serialisation round trips (bit-identical measurements after a round trip), strict parsing,
comparison and the training-config bridge."""

from __future__ import annotations

import json
import math

import pytest
import torch

from spinv.operators import ParallelBeamCT, SubsampledFourier, simulate_ct
from spinv.operators.fbp import filter_sinogram
from spinv.operators.noise import default_mu, gaussian_noise, poisson_post_log
from spinv.operators.sampling import make_mask
from spinv.problems import (
    CTGeometry,
    GaussianNoise,
    PoissonNoise,
    Problem,
    ct_problem,
    denoising_problem,
    mri_problem,
)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _x(n=16, b=2, seed=0):
    return torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))


def _problems():
    learned = torch.rand(16, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return {
        "ct": ct_problem(16, n_angles=8, photons=1e3),
        "ct-same-grid": ct_problem(16, n_angles=8, photons=1e3, mu=0.05, upsample=1),
        "ct-noiseless": ct_problem(16, n_angles=8, photons=None),
        "ct-limited": ct_problem(16, n_angles=6, angular_range=math.pi / 2, pixel_size=0.5),
        "mri": mri_problem(16, pattern="radial", rate=0.3, noise=0.05, seed=3),
        "mri-weights": mri_problem(mask=learned, noise=0.01),
        "denoise": denoising_problem(0.1, size=16),
        "denoise-any": denoising_problem(0.2),
    }


# ----------------------------------------------------------------------------- old paths


def test_ct_simulation_is_simulate_ct_and_analytic_is_fbp():
    p, x = ct_problem(16, n_angles=8, photons=1e3), _x()
    ref = simulate_ct(x, 8, photons=1e3, mu=None, upsample=2, seed=4)
    assert torch.equal(p.simulate(x, seed=4), ref)
    assert p.noise.mu == default_mu(16) and p.geometry.n_detectors == 23
    assert torch.equal(p.analytic(ref), ParallelBeamCT(16, 8).fbp(ref))
    assert p.analytic_name == "fbp"


def test_mri_and_denoising_simulation_are_the_operator_noise_functions():
    x = _x()
    p = mri_problem(16, pattern="lines", rate=0.25, noise=0.02, seed=7)
    mask = make_mask("lines", 16, 0.25, seed=7)
    assert torch.equal(p.mask, mask)
    ref = SubsampledFourier(mask).measure(x.to(torch.complex64), sigma=0.02, seed=1)
    assert torch.equal(p.simulate(x, seed=1), ref)
    d = denoising_problem(0.1)
    assert torch.equal(d.simulate(x, seed=2), gaussian_noise(x, 0.1, seed=2))
    assert d.analytic(x) is x


def test_per_sample_generators_match_one_sample_at_a_time():
    x = _x(b=3)
    for name, p in _problems().items():
        if name == "denoise-any":
            continue
        got = p.simulate(x, generator=[torch.Generator().manual_seed(j) for j in range(3)])
        if name == "ct-same-grid":  # one batched projection, per-sample noise (training's order)
            clean = p.operator(x)
            ref = torch.cat([poisson_post_log(clean[j:j + 1], 0.05, photons=1e3,
                                              generator=torch.Generator().manual_seed(j))
                             for j in range(3)])
        else:
            ref = torch.cat([p.simulate(x[j:j + 1], seed=j) for j in range(3)])
        assert torch.equal(got, ref), name
    with pytest.raises(ValueError, match="3 generators for a batch of 2"):
        p.simulate(x[:2], generator=[torch.Generator()] * 3)


def test_refined_operator_is_the_fine_grid_of_simulate_ct():
    coarse = ParallelBeamCT(16, 8)
    fine = coarse.refined(2)
    ref = ParallelBeamCT(32, 8, n_detectors=23, pixel_size=0.5)
    assert fine.cache_path == ref.cache_path
    assert (fine.matrix != ref.matrix).nnz == 0


def test_angular_range_default_is_the_old_geometry_and_scales_fbp():
    a, b = ParallelBeamCT(16, 8), ParallelBeamCT(16, 8, angular_range=math.pi)
    assert a.cache_path == b.cache_path
    half = ParallelBeamCT(16, 8, angular_range=math.pi / 2)
    assert float(half.angles.max()) < math.pi / 2
    y = half(_x(b=1))
    assert torch.allclose(half.fbp(y), half.adjoint(filter_sinogram(y)) * (math.pi / 2) / 8)


# ----------------------------------------------------------------------------- serialisation


@pytest.mark.parametrize("name", list(_problems()))
def test_json_round_trip_is_equal_and_simulates_bit_identically(name):
    p = _problems()[name]
    d = json.loads(json.dumps(p.to_dict()))
    q = Problem.from_dict(d)
    assert q == p and q.difference(p) is None and q.to_dict() == p.to_dict()
    x = _x(b=2)
    assert torch.equal(q.simulate(x, seed=11), p.simulate(x, seed=11))
    y = p.simulate(x, seed=11)
    assert torch.equal(q.analytic(y), p.analytic(y))


def test_mask_is_stored_exactly_with_its_recipe():
    p = _problems()["mri-weights"]
    d = p.to_dict()
    assert d["mask"]["dtype"] == "float64" and d["mask"]["recipe"] is None
    assert torch.equal(Problem.from_dict(d).mask, p.mask)
    r = _problems()["mri"].to_dict()["mask"]
    assert r["recipe"] == {"pattern": "radial", "rate": 0.3, "seed": 3}
    as_list = {**_problems()["mri"].to_dict(),
               "mask": {"values": _problems()["mri"].mask.tolist(), "recipe": r["recipe"]}}
    assert Problem.from_dict(as_list) == _problems()["mri"]


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"views": 3}, "problem.views: unknown key"),
        ({"kind": "pet"}, "problem.kind='pet'"),
        ({"version": 2}, "problem.version=2"),
        ({"size": 0}, "size=0"),
        ({"geometry": {"n_angles": 0}}, "problem.geometry.n_angles=0"),
        ({"geometry": {"n_angle": 5}}, "problem.geometry.n_angle: unknown key"),
        ({"geometry": {"upsample": 1.5}}, "problem.geometry.upsample=1.5"),
        ({"noise": {"photons": -1}}, "problem.noise.photons=-1"),
        ({"noise": {"sigma": 0.1}}, "problem.noise.sigma: unknown key"),
        ({"mask": {}}, "problem.mask: only a 'mri' problem"),
    ],
)
def test_from_dict_is_strict_ct(change, needle):
    d = {**ct_problem(16, n_angles=8).to_dict(), **change}
    with pytest.raises(ValueError) as err:
        Problem.from_dict(d)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"mask": None}, "problem.mask: expected a dict"),
        ({"mask": {"base64": "AAAA", "shape": [1, 1], "dtype": "int8"}}, "problem.mask.dtype"),
        ({"mask": {"base64": "AAAA", "shape": [16, 16], "dtype": "float32"}}, "3 bytes"),
        ({"size": 32}, "the mask has shape (16, 16)"),
        ({"noise": {"sigma": -0.1}}, "problem.noise.sigma=-0.1"),
        ({"geometry": {"n_angles": 3}}, "problem.geometry: only a 'ct' problem"),
    ],
)
def test_from_dict_is_strict_mri(change, needle):
    d = {**_problems()["mri"].to_dict(), **change}
    with pytest.raises(ValueError) as err:
        Problem.from_dict(d)
    assert needle in str(err.value)
    bad_recipe = _problems()["mri"].to_dict()
    bad_recipe["mask"]["recipe"]["pattern"] = "spiral"
    with pytest.raises(ValueError, match="problem.mask.recipe.pattern='spiral'"):
        Problem.from_dict(bad_recipe)
    no_mask = {k: v for k, v in _problems()["mri"].to_dict().items() if k != "mask"}
    with pytest.raises(ValueError, match="problem.mask: missing"):
        Problem.from_dict(no_mask)


# ----------------------------------------------------------------------------- comparison


def test_difference_names_the_first_differing_field():
    p = ct_problem(64, n_angles=50)
    assert p.difference(ct_problem(128, n_angles=50)) == "size 64 vs 128"
    assert p.difference(ct_problem(64, n_angles=60)) == "geometry.n_angles 50 vs 60"
    assert p.difference(ct_problem(64, photons=1e3)) == "noise.photons 10000 vs 1000"
    assert p.difference(denoising_problem(size=64)) == "kind ct vs denoise"
    m = mri_problem(16, pattern="random", rate=0.3, seed=1)
    assert m.difference(mri_problem(16, pattern="random", rate=0.3, seed=2)).startswith(
        "mask.recipe.seed 1 vs 2")
    other = mri_problem(mask=m.mask.clone().index_fill_(0, torch.tensor([0]), 1.0))
    assert m.difference(other) == "mask.recipe.pattern random vs (none)"
    assert Problem("mri", 16, m.noise, mask=m.mask).difference(other).startswith("mask differs at")
    assert p == ct_problem(64) and p != ct_problem(64, upsample=1)


def test_describe_and_config_bridge():
    from spinv.training.config import parse_config

    cfg = parse_config({"problem": {"kind": "ct", "image_size": 32, "n_angles": 20,
                                    "photons": 5e3, "upsample": 2}})
    p = Problem.from_config(cfg.problem)
    assert p == ct_problem(32, n_angles=20, photons=5e3, upsample=2)
    assert p.describe().startswith("ct 32x32: 20 views over 180 deg, 46 detectors")
    cfg = parse_config({"problem": {"kind": "mri", "image_size": 16, "noise_sigma": 0.03,
                                    "mask": {"pattern": "lines", "rate": 0.3, "seed": 2}}})
    m = Problem.from_config(cfg.problem)
    assert m == mri_problem(16, pattern="lines", rate=0.3, noise=0.03, seed=2)
    assert "lines mask at rate 0.3 (seed 2)" in m.describe()
    d = Problem.from_config(parse_config({"problem": {"kind": "denoise"}}).problem)
    assert d == denoising_problem(0.1, size=32)


def test_with_operator_checks_the_geometry():
    p = ct_problem(16, n_angles=8)
    op = ParallelBeamCT(16, 8)
    assert p.with_operator(op).operator is op
    with pytest.raises(ValueError, match="n_angles 9 does not match the problem's 8"):
        p.with_operator(ParallelBeamCT(16, 9))
    m = mri_problem(16, pattern="random", rate=0.3)
    with pytest.raises(ValueError, match="sampling mask"):
        m.with_operator(SubsampledFourier(torch.ones(16, 16)))


def test_constructor_checks():
    with pytest.raises(TypeError, match="noise: kind 'ct' needs a PoissonNoise"):
        Problem("ct", 16, GaussianNoise(0.1))
    with pytest.raises(ValueError, match="CT needs a square image"):
        Problem("ct", (16, 8), PoissonNoise())
    with pytest.raises(ValueError, match="geometry: only a 'ct' problem"):
        Problem("denoise", 16, GaussianNoise(0.1), geometry=CTGeometry())
    with pytest.raises(ValueError, match="mask=None"):
        Problem("mri", 16, GaussianNoise(0.1))
    with pytest.raises(ValueError, match="mask='triangle'"):
        mri_problem(16, pattern="triangle")
    assert mri_problem((16, 12), pattern="random", rate=0.5).size == (16, 12)
    assert mri_problem((16, 12), pattern="random", rate=0.5).to_dict()["size"] == [16, 12]


# ----------------------------------------------------------------------------- call sites
# Each replacement offered to the owners of the remaining problem builders, pinned to the code
# it replaces (bit for bit).


def test_replacement_for_the_equivariance_mri_data():
    from spinv.operators.sampling import variable_density_lines

    x = _x()
    old_op = SubsampledFourier(variable_density_lines((16, 16), 0.2, seed=4))
    old = old_op.measure(x, sigma=0.02, seed=9).to(torch.complex64)
    p = mri_problem(16, pattern="lines", rate=0.2, noise=0.02, seed=4)
    assert torch.equal(p.operator.mask, old_op.mask) and torch.equal(p.simulate(x, seed=9), old)


def test_replacement_for_the_generative_make_problem_in_float64():
    x = _x().double()
    mask = make_mask("variable-density", (16, 16), 0.25, seed=2)
    old = SubsampledFourier(mask).measure(x, sigma=0.05, seed=6)
    new = mri_problem(tuple(x.shape[-2:]), "variable-density", 0.25, 0.05, seed=2)
    assert old.dtype == torch.complex128 and torch.equal(new.simulate(x, seed=6), old)
    gen_old, gen_new = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(new.simulate(x, generator=gen_new),
                       SubsampledFourier(mask).measure(x, sigma=0.05, generator=gen_old))


def test_replacement_for_the_denoising_experiment_noise():
    clean = _x(b=3)
    g_old, g_new = torch.Generator().manual_seed(12345), torch.Generator().manual_seed(12345)
    old = clean + 0.1 * torch.randn(clean.shape, generator=g_old)
    assert torch.equal(denoising_problem(0.1).simulate(clean, generator=g_new), old)


def test_analytic_hook_is_fbp_if_available_else_adjoint():
    x = _x(b=1)
    for p in (_problems()["ct"], _problems()["mri"], _problems()["denoise"]):
        op = p.operator
        y = p.simulate(x, seed=0)
        old = op.fbp(y) if hasattr(op, "fbp") else op.adjoint(y)
        assert torch.equal(op.analytic(y), old) and torch.equal(p.analytic(y), old)
