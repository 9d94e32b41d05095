"""k-space sampling patterns: rates, reproducibility, centring, validation, mask files."""

import math

import numpy as np
import pytest
import torch

from spinv.operators import SubsampledFourier, sampling
from spinv.operators.sampling import PATTERNS, load_mask, make_mask, save_mask

SHAPES = [(64, 64), (33, 47), (96, 128)]
RATES = [0.05, 0.2, 0.5, 1.0]


def _tolerance(name, h, w):
    """The documented rate guarantees of spinv.operators.sampling."""
    if name in ("lines", "equispaced-lines"):
        return 0.5 / w + 1e-9
    if name == "radial":
        return math.hypot(h, w) / (h * w)
    return 0.5 / (h * w) + 1e-9


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("shape", SHAPES)
def test_rates_binary_and_dc_sampled(name, shape):
    h, w = shape
    for rate in RATES:
        m = make_mask(name, shape, rate, seed=3)
        assert m.shape == shape and m.dtype == torch.float32
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
        achieved = float(m.double().mean())
        assert abs(achieved - rate) <= _tolerance(name, h, w), (rate, achieved)
        if name != "random":
            assert m[h // 2, w // 2] == 1.0  # DC sits at the centre and is sampled


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_reproducible_per_seed(name):
    a = make_mask(name, (40, 36), 0.25, seed=11)
    assert torch.equal(a, make_mask(name, (40, 36), 0.25, seed=11))
    if name != "low-pass":  # deterministic by design
        others = [make_mask(name, (40, 36), 0.25, seed=s) for s in range(12, 16)]
        assert any(not torch.equal(a, o) for o in others)


def test_variable_density_concentrates_at_low_frequencies():
    masks = torch.stack([sampling.variable_density((64, 64), 0.2, seed=s) for s in range(30)])
    freq = masks.mean(0)
    r = sampling._radius(64, 64)
    assert float(freq[r < 0.08].min()) == 1.0  # fully sampled centre
    inner, outer = freq[(r > 0.1) & (r < 0.3)].mean(), freq[r > 0.7].mean()
    assert inner > 3 * outer
    # empirical marginals follow the bisected density (which sums to K exactly)
    p = sampling.polynomial_density(r, round(0.2 * 64 * 64))
    assert abs(float(p.sum()) - round(0.2 * 64 * 64)) < 1e-6
    for lo in np.arange(0.1, 1.0, 0.1):  # ring averages: 30 masks x >= 250 locations per ring
        ring = (r >= lo) & (r < lo + 0.1)
        assert abs(float(freq[ring].double().mean() - p[ring].mean())) < 0.03


def test_lines_are_full_columns_with_centre():
    for fn in (sampling.variable_density_lines, sampling.equispaced_lines):
        m = fn((50, 80), 0.25, seed=0)
        cols = m[0]
        assert torch.equal(m, cols.expand(50, 80))  # every sampled column is a full line
        assert int(cols.sum()) == 20
        assert cols[40] == 1 and cols[39] == 1 and cols[41] == 1
    eq = torch.nonzero(sampling.equispaced_lines((8, 200), 0.1, seed=0, centre_fraction=0.02)[0])
    gaps = torch.diff(eq.reshape(-1)).tolist()
    outer = [g for g in gaps if g > 1]
    assert max(outer) - min(outer) <= 2  # evenly spaced outside the centre block


def test_low_pass_square_and_disc():
    sq = sampling.low_pass((65, 65), 25 / 65**2)
    assert torch.equal(torch.nonzero(sq).amin(0), torch.tensor([30, 30]))
    assert torch.equal(torch.nonzero(sq).amax(0), torch.tensor([34, 34]))
    disc = sampling.low_pass((64, 64), 0.1, kind="disc")
    idx = torch.nonzero(disc).double() - 32
    assert float(idx.norm(dim=1).max()) < 13


def test_radial_spoke_count_and_symmetry():
    m = sampling.radial((64, 64), 0.1, seed=0, n_spokes=1)
    assert 60 <= int(m.sum()) <= 92  # one line across the square
    full = sampling.radial((64, 64), 0.3, seed=0)
    assert float(full.mean()) > 0.28
    with pytest.raises(ValueError, match="n_spokes"):
        sampling.radial((8, 8), 0.1, n_spokes=0)


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan")])
def test_bad_rate(name, rate):
    with pytest.raises(ValueError, match="rate"):
        make_mask(name, (16, 16), rate)


def test_bad_shape_seed_and_pattern():
    with pytest.raises(ValueError, match="shape"):
        sampling.uniform_random((0, 4), 0.5)
    with pytest.raises(ValueError, match="shape"):
        sampling.uniform_random((4, 4, 4), 0.5)
    with pytest.raises(TypeError, match="seed"):
        sampling.uniform_random(8, 0.5, seed="x")
    with pytest.raises(ValueError, match="pattern"):
        make_mask("spiral", 8, 0.5)
    with pytest.raises(TypeError, match="rate"):
        sampling.uniform_random(8, "half")


def test_generator_accepted_as_seed():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = sampling.uniform_random(16, 0.3, seed=g1), sampling.uniform_random(16, 0.3, seed=g2)
    assert torch.equal(a, b)


def test_save_load_mask_roundtrip(tmp_path):
    m = sampling.variable_density((20, 24), 0.3, seed=1) * 0.5
    path = save_mask(tmp_path / "sub" / "mask.npy", m)
    loaded = load_mask(path)
    assert loaded.dtype == torch.float32 and torch.equal(loaded, m)
    SubsampledFourier(loaded)  # usable directly


def test_load_mask_validation(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_mask(tmp_path / "missing.npy")
    np.save(tmp_path / "big.npy", np.full((4, 4), 2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_mask(tmp_path / "big.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        load_mask(tmp_path / "obj.npy")
    np.save(tmp_path / "cube.npy", np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        load_mask(tmp_path / "cube.npy")
    with pytest.raises(ValueError, match=".npy"):
        load_mask(tmp_path / "mask.txt")
