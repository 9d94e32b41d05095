"""Multi-coil MRI problems: building, simulation, serialisation (old dicts still load),
comparison and validation."""

import json

import pytest
import torch

from spinv.operators import SubsampledFourier
from spinv.operators.mri_multicoil import MultiCoilFourier
from spinv.problems import CoilRecipe, Problem, ct_problem, mri_problem


def test_simulated_coils_problem():
    p = mri_problem(32, pattern="equispaced-lines", rate=0.25, noise=0.01, coils=4)
    assert isinstance(p.operator, MultiCoilFourier) and p.operator.n_coils == 4
    assert p.analytic_name == "rss" and p.coils == CoilRecipe(4)
    x = torch.rand(2, 1, 32, 32)
    y = p.simulate(p.ground_truth(x), seed=0)
    assert y.shape == (2, 4, 32, 32) and y.dtype == torch.complex64
    assert torch.equal(y, p.simulate(p.ground_truth(x), seed=0))
    assert p.analytic(y).shape == (2, 1, 32, 32)
    noiseless = mri_problem(32, pattern="equispaced-lines", rate=0.25, coils=4)
    residual = y - noiseless.simulate(noiseless.ground_truth(x))
    mask = p.mask > 0
    assert float(residual[..., mask].abs().pow(2).mean()) == pytest.approx(1e-4, rel=0.1)
    assert "4 coils (birdcage" in p.describe()


def test_round_trip_recipe_and_given_maps():
    p = mri_problem(24, pattern="lines", rate=0.5, noise=0.02, coils=3)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["coils"] == {"recipe": {"n_coils": 3, "radius": 1.5}}  # maps remade, not stored
    q = Problem.from_dict(d)
    assert q == p and torch.equal(q.sensitivities, p.sensitivities)
    maps = torch.randn(2, 24, 24, dtype=torch.complex64)
    g = mri_problem(24, pattern="lines", rate=0.5, sensitivities=maps)
    h = Problem.from_dict(json.loads(json.dumps(g.to_dict())))
    assert torch.equal(h.sensitivities, maps) and h == g and h.coils is None
    assert "2 coils (given maps)" in g.describe()


def test_old_single_coil_dicts_still_load():
    p = mri_problem(16, pattern="low-pass", rate=0.5)
    d = p.to_dict()
    assert "coils" not in d
    q = Problem.from_dict(d)
    assert q.sensitivities is None and isinstance(q.operator, SubsampledFourier)
    assert q.analytic_name == "zero-filled"


def test_differences_name_the_coils():
    a = mri_problem(16, pattern="lines", rate=0.5, coils=4)
    assert a.difference(mri_problem(16, pattern="lines", rate=0.5, coils=8)) == \
        "coils.n_coils 4 vs 8"
    single = mri_problem(16, pattern="lines", rate=0.5)
    assert a.difference(single).startswith("coils")
    maps = a.sensitivities.clone()
    maps[0, 0, 0] += 1
    b = mri_problem(16, pattern="lines", rate=0.5, sensitivities=maps)
    c = mri_problem(16, pattern="lines", rate=0.5, sensitivities=a.sensitivities)
    assert b.difference(c) == "coil sensitivities differ"


def test_with_operator_checks_the_maps():
    p = mri_problem(16, pattern="lines", rate=0.5, coils=2)
    p.with_operator(MultiCoilFourier(p.mask, p.sensitivities))
    with pytest.raises(ValueError, match="coil sensitivities"):
        p.with_operator(MultiCoilFourier(p.mask, p.sensitivities * 2))
    with pytest.raises(ValueError, match="single- vs multi-coil"):
        p.with_operator(SubsampledFourier(p.mask))


def test_bad_coil_settings():
    with pytest.raises(ValueError, match="coils.n_coils"):
        mri_problem(16, coils=0)
    with pytest.raises(ValueError, match="image shape"):
        mri_problem(16, sensitivities=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match="not both"):
        mri_problem(16, coils=2, sensitivities=torch.ones(2, 16, 16))
    with pytest.raises(ValueError, match="coils: only a 'mri' problem"):
        Problem.from_dict({**ct_problem(8, n_angles=4).to_dict(), "coils": {"recipe": {}}})
    d = mri_problem(8, coils=2).to_dict()
    with pytest.raises(ValueError, match="problem.coils"):
        Problem.from_dict({**d, "coils": {"recipe": {"n_coils": 2}, "base64": ""}})
