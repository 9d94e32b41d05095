"""Fan-beam CT problems: serialisation (old parallel dicts unchanged and still loading),
simulation with low-dose noise on a finer grid, FBP as the analytic reconstruction."""

import math

import pytest
import torch

from spinv.operators.ct_fan import FanBeamCT
from spinv.problems import FanGeometry, Problem, ct_problem

OLD_PARALLEL_DICT = {  # written by spinv before fan beams existed
    "version": 1, "kind": "ct", "size": 32,
    "geometry": {"n_angles": 20, "n_detectors": 46, "angular_range": math.pi,
                 "pixel_size": 1.0, "detector_spacing": 1.0, "upsample": 2},
    "noise": {"photons": 10000.0, "mu": 0.4375, "eta": 1e-08},
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path / "cache"))


def test_parallel_dicts_are_unchanged_and_old_dicts_load():
    p = ct_problem(32, 20)
    assert p.to_dict() == {**OLD_PARALLEL_DICT, "version": p.to_dict()["version"]}
    assert Problem.from_dict(OLD_PARALLEL_DICT) == p
    assert p.geometry.fan is None


def test_fan_problem_round_trip_defaults_and_difference():
    p = ct_problem(32, 20, geometry="fan")
    g = p.to_dict()["geometry"]
    assert g["fan"] == {"source_distance": 64.0, "detector_distance": 128.0,
                        "detector_type": "equiangular"}
    assert g["angular_range"] == 2 * math.pi and g["detector_spacing"] == 2.0
    assert Problem.from_dict(p.to_dict()) == p
    flat = ct_problem(32, 20, geometry=FanGeometry(80.0, 150.0, "flat"))
    assert Problem.from_dict(flat.to_dict()) == flat
    assert p.difference(flat) is not None and "fan" in flat.describe()
    assert p.difference(ct_problem(32, 20)) is not None
    op = flat.operator
    assert isinstance(op, FanBeamCT) and op.detector_type == "flat"
    assert (op.source_distance, op.detector_distance) == (80.0, 150.0)
    with pytest.raises(ValueError, match="parallel vs fan"):
        p.with_operator(ct_problem(32, 20).operator)


@pytest.mark.parametrize("geometry, word", [
    ({"fan": {"source_distance": 5.0}}, "problem.geometry.fan.source_distance"),
    ({"fan": {"detector_type": "curved"}}, "problem.geometry.fan.detector_type"),
    ({"fan": {"views": 3}}, "problem.geometry.fan.views: unknown key"),
    ({"fan": {"source_distance": 64.0, "detector_distance": 50.0}},
     "problem.geometry.fan.detector_distance"),
])
def test_bad_fan_dicts_name_the_key(geometry, word):
    d = ct_problem(32, 20, geometry="fan").to_dict()
    with pytest.raises(ValueError, match=word):
        Problem.from_dict({**d, "geometry": {**d["geometry"], **geometry}})
    with pytest.raises(ValueError, match="geometry"):
        ct_problem(32, geometry="cone")


def test_fan_simulate_is_low_dose_and_fbp_reconstructs():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x = (((xx - 15.5) ** 2 + (yy - 15.5) ** 2) < 10**2).float()[None, None] * 0.5
    p = ct_problem(32, 60, photons=1e4, geometry="fan")
    clean = ct_problem(32, 60, photons=None, geometry="fan")
    y, y0 = p.simulate(x, seed=0), clean.simulate(x)
    assert y.shape == (1, 1, 60, p.geometry.n_detectors)
    assert torch.equal(y, p.simulate(x, seed=0)) and not torch.equal(y, y0)
    rel = float((y - y0).norm() / y0.norm())
    assert 1e-3 < rel < 0.1  # measured 0.018: Poisson post-log noise, not garbage
    rec = clean.analytic(y0)
    inner = ((xx - 15.5) ** 2 + (yy - 15.5) ** 2) < 7**2
    assert abs(float(rec[0, 0][inner].mean()) - 0.5) < 0.02
    assert clean.analytic_name == "fbp"


def test_variational_methods_run_on_the_fan_operator_and_beat_fbp():
    """TV and TGV (PDHG, operator-generic) on fan-beam data of two validation slices; alpha
    fixed (from a 0.01-0.1 sweep on these validation slices), never the test split."""
    from spinv.data import load_dataset
    from spinv.metrics import psnr
    from spinv.reconstruction import ReconstructionOptions, reconstruct

    x = torch.from_numpy(load_dataset("ct-head", "val")[:2])[:, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="area")
    p = ct_problem(32, 30, geometry="fan")
    y = p.simulate(x, seed=0)
    span = x.flatten(1).amax(1) - x.flatten(1).amin(1)

    def score(r: torch.Tensor) -> float:
        return float(psnr(r, x, data_range=span).mean())

    fbp = score(p.analytic(y))
    tv = score(reconstruct(p, y, ReconstructionOptions("tv", 0.03, 100)))
    tgv = score(reconstruct(p, y, ReconstructionOptions("tgv", 0.01, 100)))
    assert tv > fbp + 1.0 and tgv > fbp + 1.0  # measured FBP 23.3, TV 25.9, TGV 25.5 dB


def test_a_parallel_model_is_refused_on_fan_data_naming_the_beam():
    assert ct_problem(32, 20).difference(ct_problem(32, 20, geometry="fan")) == \
        "geometry.beam parallel vs fan"
