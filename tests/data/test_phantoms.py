"""Phantoms: Shepp-Logan agrees with scikit-image's; random ellipses are seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom

from spinv.data.phantoms import ellipse_phantom, random_ellipses, shepp_logan


def test_shepp_logan_matches_skimage():
    ref = shepp_logan_phantom()  # 400 x 400, modified intensities
    x = shepp_logan(400)[0, 0].numpy()
    close = np.abs(x - ref) < 0.02
    assert close.mean() > 0.97  # differences only on ellipse boundaries (pixel sampling)
    np.testing.assert_allclose(np.unique(x), [0.0, 0.1, 0.2, 0.3, 0.4, 1.0], atol=1e-6)


def test_shepp_logan_sizes_and_original_values():
    x = shepp_logan((48, 64), modified=False)
    assert x.shape == (1, 1, 48, 64) and x.dtype == torch.float32
    assert float(x.max()) == pytest.approx(2.0) and float(x.min()) == 0.0
    with pytest.raises(ValueError, match="size"):
        shepp_logan(0)


def test_ellipse_orientation_and_area():
    # a disc of radius 0.5 covers pi/16 of the square
    disc = ellipse_phantom(200, [(1.0, 0.5, 0.5, 0.0, 0.0, 0.0)])
    assert float(disc.mean()) == pytest.approx(np.pi / 16, abs=2e-3)
    # a small ellipse at y0 = +0.5 is in the top half, x0 = +0.5 in the right half
    e = ellipse_phantom(64, [(1.0, 0.1, 0.1, 0.5, 0.5, 0.0)])[0, 0]
    rows, cols = torch.nonzero(e, as_tuple=True)
    assert rows.float().mean() < 32 and cols.float().mean() > 32
    # rotation by 90 degrees swaps the half-axes
    a = ellipse_phantom(64, [(1.0, 0.6, 0.2, 0, 0, np.pi / 2)])
    b = ellipse_phantom(64, [(1.0, 0.2, 0.6, 0, 0, 0.0)])
    assert float((a - b).abs().mean()) < 0.01


def test_random_ellipses_seeded():
    a = random_ellipses(32, batch=3, seed=1)
    assert a.shape == (3, 1, 32, 32)
    assert torch.equal(a, random_ellipses(32, batch=3, seed=1))
    assert not torch.equal(a, random_ellipses(32, batch=3, seed=2))
    assert not torch.equal(a[0], a[1])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(random_ellipses(16, seed=g1), random_ellipses(16, seed=g2))
    n = random_ellipses(32, batch=2, seed=3, normalize=True)
    assert float(n.min()) == 0.0 and float(n.max()) == 1.0
    with pytest.raises(TypeError, match="seed"):
        random_ellipses(16, seed="x")
