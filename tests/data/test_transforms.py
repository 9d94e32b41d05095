"""Rotations and region-of-interest masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinv.data import load_dataset
from spinv.data.transforms import body_mask_ct, random_rotation, roi_mask_mri, rotate


def _smooth(b, h, w, seed=0, factor=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 1, h // factor, w // factor, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)


def _blob(h, w, cy, cx, s=3.0):
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))[None, None]


@pytest.mark.parametrize("angle", [30.0, -45.0, 123.0])
def test_rotation_moves_a_blob_where_the_formula_says(angle):
    h, w = 48, 64
    c = np.array([(h - 1) / 2, (w - 1) / 2])
    p = c + np.array([-6.0, 10.0])  # (row, col)
    t = np.deg2rad(angle)
    # counter-clockwise on screen: in (x right, y up) = (col, -row) coordinates
    dx, dy = p[1] - c[1], -(p[0] - c[0])
    qx, qy = np.cos(t) * dx - np.sin(t) * dy, np.sin(t) * dx + np.cos(t) * dy
    q = (c[0] - qy, c[1] + qx)
    got = rotate(_blob(h, w, *p), angle)
    np.testing.assert_allclose(got, _blob(h, w, *q), atol=0.05)  # bilinear error at the peak


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_rotation_by_multiples_of_90_is_rot90(k):
    x = torch.rand(2, 3, 12, 12)
    assert torch.equal(rotate(x, 90 * k), torch.rot90(x, k, dims=(-2, -1)))
    # the interpolating path agrees with rot90 too (tiny offset avoids the exact branch)
    np.testing.assert_allclose(
        rotate(x, 90 * k + 1e-6), torch.rot90(x, k, dims=(-2, -1)), atol=1e-5
    )


def test_rotation_is_counter_clockwise_on_screen():
    x = torch.zeros(1, 1, 6, 10)
    x[0, 0, 2, 7] = 1.0  # right of the centre, slightly above
    y = rotate(x, 90.0)  # non-square: interpolating path
    assert torch.nonzero(y[0, 0]).tolist() == [[0, 4]]  # now above the centre
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)


def test_rotate_then_back_is_identity_in_the_disc():
    x = _smooth(2, 64, 64, factor=8)
    y = rotate(rotate(x, 37.0), -37.0)
    yy, xx = torch.meshgrid(torch.arange(64.0) - 31.5, torch.arange(64.0) - 31.5, indexing="ij")
    disc = (yy**2 + xx**2) < 28.0**2
    err = (y - x)[..., disc].abs().max()
    assert float(err) < 0.04  # two bilinear interpolations smooth a little
    assert float((y - x)[..., disc].abs().mean()) < 0.005
    # outside the inscribed disc the corners are lost (zero fill)
    assert float(y[..., 0, 0].abs().max()) == 0.0


def test_rotation_per_image_angles_layouts_and_complex():
    x = _smooth(3, 32, 32)
    ang = torch.tensor([0.0, 30.0, 90.0])
    y = rotate(x, ang)
    for i in range(3):
        np.testing.assert_allclose(y[i : i + 1], rotate(x[i : i + 1], float(ang[i])), atol=1e-6)
    assert torch.equal(y[0], x[0])
    assert rotate(x[:, 0], 15.0).shape == (3, 32, 32) and rotate(x[0, 0], 15.0).shape == (32, 32)
    z = torch.complex(x, 2 * x)
    rz = rotate(z, 20.0)
    np.testing.assert_allclose(rz.real, rotate(x, 20.0), atol=1e-6)
    np.testing.assert_allclose(rz.imag, rotate(2 * x, 20.0), atol=1e-6)
    with pytest.raises(ValueError, match="angle_degrees"):
        rotate(x, torch.zeros(2))


def test_random_rotation_seeded():
    x = _smooth(4, 16, 16)
    a, angles = random_rotation(x, seed=3)
    b, angles2 = random_rotation(x, seed=3)
    assert torch.equal(a, b) and torch.equal(angles, angles2)
    assert angles.shape == (4,) and float(angles.abs().max()) <= 180.0
    _, c4 = random_rotation(x, seed=0, group_order=4)
    assert set((c4 / 90).round().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_roi_mask_mri_is_convex_hull_of_threshold():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 5, 5] = x[0, 0, 5, 25] = x[0, 0, 25, 5] = 1.0  # three corners of a triangle
    m = roi_mask_mri(x)
    assert m.shape == (1, 1, 32, 32) and m.dtype == torch.bool
    assert bool(m[0, 0, 10, 10]) and not bool(m[0, 0, 20, 20])
    brain = load_dataset("brain-t1", "test")[:2]
    mm = roi_mask_mri(brain)
    assert mm.shape == (2, 224, 224)
    frac = mm.float().mean((1, 2))
    assert bool(((frac > 0.1) & (frac < 0.8)).all())
    assert not bool(mm[:, 0, 0].any())  # background corner excluded


def test_body_mask_ct_largest_component_filled():
    x = torch.zeros(32, 32)
    x[4:28, 4:28] = 0.6
    x[10:14, 10:14] = 0.0  # a hole (air pocket) inside the body
    x[0:2, 30:32] = 0.9  # a small separate object (e.g. the table)
    m = body_mask_ct(x)
    assert m.shape == (32, 32)
    assert bool(m[12, 12]) and not bool(m[0, 31]) and int(m.sum()) == 24 * 24
    ct = load_dataset("ct-head", "test")[:2]
    assert body_mask_ct(ct).float().mean() > 0.05
