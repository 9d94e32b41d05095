"""Simulation pipeline: purity in (seed, step), sharding, epochs, noise models, user folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinv.training.config import parse_config
from spinv.training.data import (
    Simulator,
    TrainingData,
    fixed_set,
    generator_for,
    load_images_for,
    make_operator,
    make_problem,
)

from .conftest import tiny_dict


def _data(images=None, **sections):
    cfg = parse_config(tiny_dict(**sections))
    return cfg, TrainingData(cfg, make_operator(cfg.problem), images=images)


def test_batches_are_pure_functions_of_seed_and_step():
    _, d1 = _data()
    _, d2 = _data()
    for step in (0, 5, 2):
        x1, y1 = d1.batch(step)
        x2, y2 = d2.batch(step)
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    _, d3 = _data(train={"seed": 4})
    assert not torch.equal(d1.batch(0)[1], d3.batch(0)[1])


def test_shards_of_ranks_concatenate_to_the_global_batch():
    _, d = _data(train={"batch_size": 4})
    x, y = d.batch(7)
    parts = [d.batch(7, rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="batch_size=4 is not divisible"):
        d.batch(0, rank=0, world_size=3)


def test_each_epoch_visits_every_training_image_once():
    imgs = torch.arange(6.0).reshape(6, 1, 1, 1).expand(6, 1, 16, 16).contiguous() / 10
    _, d = _data(images=imgs, train={"batch_size": 3})
    seen = [i for step in range(4) for i in d.indices(step)]
    assert sorted(seen[:6]) == list(range(6)) and sorted(seen[6:]) == list(range(6))
    assert seen[:6] != seen[6:]  # reshuffled per epoch


def test_n_train_limits_the_training_set():
    cfg, d = _data(data={"n_train": 3})
    assert d.n_train == 3
    with pytest.raises(ValueError, match="data.n_train=999"):
        _data(data={"n_train": 999})


def test_denoising_noise_level():
    cfg = parse_config(tiny_dict(problem={"noise_sigma": 0.2}))
    sim = Simulator(cfg.problem, make_operator(cfg.problem))
    x = torch.zeros(4, 1, 64, 64)
    y = sim.measure(x, [generator_for(0, j) for j in range(4)])
    assert abs(float(y.std()) - 0.2) < 0.01


def test_mri_measurements_live_on_the_mask():
    cfg = parse_config(tiny_dict(problem={"kind": "mri", "noise_sigma": 0.05,
                                          "mask": {"pattern": "random", "rate": 0.3}}))
    op = make_operator(cfg.problem)
    sim = Simulator(cfg.problem, op)
    x = torch.rand(2, 1, 16, 16)
    y = sim.measure(x, [generator_for(1, j) for j in range(2)])
    assert y.dtype == torch.complex64
    assert bool((y[..., op.mask == 0] == 0).all())
    noise = (y - op(x.to(torch.complex64)))[..., op.mask > 0]
    assert 0.0 < float(noise.abs().pow(2).mean().sqrt()) < 0.1


def test_ct_measurements_approach_the_sinogram_with_many_photons(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path))
    cfg = parse_config(tiny_dict(problem={"kind": "ct", "n_angles": 8, "photons": 1e9}))
    op = make_operator(cfg.problem)
    sim = Simulator(cfg.problem, op)
    x = torch.rand(1, 1, 16, 16)
    y = sim.measure(x, [generator_for(0)])
    clean = op(x)
    assert float((y - clean).abs().max()) < 1e-2 * float(clean.abs().max())
    low = parse_config(tiny_dict(problem={"kind": "ct", "n_angles": 8, "photons": 100}))
    y_low = Simulator(low.problem, op).measure(x, [generator_for(0)])
    assert float((y_low - clean).abs().mean()) > float((y - clean).abs().mean())


def test_fixed_sets_do_not_depend_on_chunking():
    cfg = parse_config(tiny_dict())
    sim = Simulator(cfg.problem, make_operator(cfg.problem))
    imgs = torch.rand(5, 1, 16, 16)
    _, y = fixed_set(imgs, sim, 1, "test")
    _, ya = fixed_set(imgs[:2], sim, 1, "test")
    _, yb = fixed_set(imgs[2:], sim, 1, "test", offset=2)
    assert torch.equal(torch.cat([ya, yb]), y)


def test_random_rotation_of_training_samples_is_reproducible():
    _, d = _data(data={"rotate_train": True})
    _, d2 = _data(data={"rotate_train": False})
    x, _ = d.batch(1)
    assert torch.equal(x, d.batch(1)[0])
    assert not torch.equal(x, d2.batch(1)[0])


def test_user_folder_as_dataset(tmp_path):
    from spinv.data.io import save_image

    rng = np.random.default_rng(0)
    for i in range(5):
        save_image(tmp_path / f"im{i}.npy", rng.random((20, 24)).astype(np.float32))
    train = load_images_for(str(tmp_path), "train", 16, val_size=2)
    val = load_images_for(str(tmp_path), "val", 16, val_size=2)
    test = load_images_for(str(tmp_path), "test", 16, val_size=2)
    assert train.shape == (3, 1, 16, 16) and val.shape == (2, 1, 16, 16)
    assert test.shape == (5, 1, 16, 16)
    assert float(test.min()) >= 0.0 and float(test.max()) <= 1.0
    with pytest.raises(FileNotFoundError, match="neither a bundled dataset"):
        load_images_for(str(tmp_path / "missing"), "test", 16)


def _old_measure(cfg, op, x, gens):
    """The simulation of the Simulator before it delegated to spinv.problems.Problem."""
    from spinv.operators import noise
    from spinv.operators.ct import simulate_ct

    p = cfg.problem
    mu = (p.mu if p.mu is not None else noise.default_mu(p.image_size)) if p.kind == "ct" else 0
    if p.kind == "ct" and p.upsample > 1:
        return torch.cat([simulate_ct(x[j:j + 1], p.n_angles, photons=p.photons, mu=mu,
                                      upsample=p.upsample, generator=g,
                                      n_detectors=op.n_detectors) for j, g in enumerate(gens)])
    if p.kind == "ct":
        clean = op(x)
        if p.photons is None:
            return clean
        return torch.cat([noise.poisson_post_log(clean[j:j + 1], mu, photons=p.photons,
                                                 generator=g) for j, g in enumerate(gens)])
    if p.kind == "mri":
        xc = x.to(torch.complex64)
        return torch.cat([op.measure(xc[j:j + 1], sigma=p.noise_sigma, generator=g)
                          for j, g in enumerate(gens)])
    return torch.cat([noise.gaussian_noise(x[j:j + 1], p.noise_sigma, generator=g)
                      for j, g in enumerate(gens)])


@pytest.mark.parametrize("problem", [
    {"kind": "ct", "n_angles": 8, "photons": 1e3},
    {"kind": "ct", "n_angles": 8, "photons": 1e3, "mu": 0.05, "upsample": 2},
    {"kind": "ct", "n_angles": 8, "photons": None},
    {"kind": "mri", "noise_sigma": 0.05, "mask": {"pattern": "lines", "rate": 0.3, "seed": 2}},
    {"kind": "mri", "noise_sigma": 0.0},
    {"kind": "denoise", "noise_sigma": 0.2},
])
def test_simulator_pinned_to_the_pre_problem_implementation(problem, monkeypatch, tmp_path):
    from spinv.operators.sampling import PATTERNS
    from spinv.problems import Problem

    monkeypatch.setenv("SPINV_CACHE", str(tmp_path))
    cfg = parse_config(tiny_dict(problem=problem))
    op = make_operator(cfg.problem)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    y = Simulator(cfg.problem, op).measure(x, [generator_for(9, j) for j in range(3)])
    assert torch.equal(y, _old_measure(cfg, op, x, [generator_for(9, j) for j in range(3)]))
    assert Problem.from_dict(make_problem(cfg.problem).to_dict()) == make_problem(cfg.problem)
    if problem["kind"] == "mri":  # the old make_mask: PATTERNS[pattern]((n, n), rate, seed)
        m = cfg.problem.mask
        assert torch.equal(op.mask, PATTERNS[m.pattern]((16, 16), m.rate, seed=m.seed).float())


def test_simulator_refuses_an_operator_of_another_geometry(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINV_CACHE", str(tmp_path))
    cfg = parse_config(tiny_dict(problem={"kind": "ct", "n_angles": 8}))
    other = parse_config(tiny_dict(problem={"kind": "ct", "n_angles": 9}))
    with pytest.raises(ValueError, match="n_angles 9 does not match the problem's 8"):
        Simulator(cfg.problem, make_operator(other.problem))
