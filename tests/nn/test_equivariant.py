"""Equivariance, export and initialisation of the group convolutions (thesis §2.3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spinv.nn.equivariant import (
    GroupConv,
    LiftingConv,
    NormNonlinearity,
    ProjectionConv,
    export_module,
)
from spinv.nn.groups import FiniteGroup, parse_group, transform
from spinv.nn.steerable import pixel_basis, steerable_basis


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- groups


@pytest.mark.parametrize("name", ["C1", "C2", "C4", "C5", "C8", "D1", "D4", "D6"])
def test_group_axioms(name):
    G = parse_group(name)
    n = G.order
    for a in range(n):
        assert G.compose(a, G.inverse(a)) == 0 == G.compose(G.inverse(a), a)
        for b in range(n):
            for c in range(n):
                assert G.compose(G.compose(a, b), c) == G.compose(a, G.compose(b, c))


@pytest.mark.parametrize("name", ["C4", "D4"])
def test_grid_action_is_a_representation(name):
    G = parse_group(name)
    x = _randn(1, 2 * G.order, 5, 5)
    for a in range(G.order):
        for b in range(G.order):
            lhs = transform(transform(x, G, b, "regular"), G, a, "regular")
            rhs = transform(x, G, G.compose(a, b), "regular")
            assert torch.equal(lhs, rhs)


def test_points_action_matches_grid_action():
    G = parse_group("D4")
    k = 5
    c = (k - 1) / 2
    for g in range(G.order):
        img = torch.zeros(k, k)
        img[0, 1] = 1.0  # the pixel at x = -1, y = 2
        moved = transform(img[None, None], G, g)[0, 0]
        i, j = (moved == 1).nonzero()[0].tolist()
        gx, gy = G.act_on_points(g, torch.tensor(-1.0), torch.tensor(2.0))
        assert (j - c, c - i) == pytest.approx((float(gx), float(gy)), abs=1e-9)


def test_parse_group_rejects_bad_input():
    with pytest.raises(ValueError, match="group="):
        parse_group("SO2")
    with pytest.raises(TypeError, match="group="):
        parse_group(4)
    with pytest.raises(ValueError, match="m="):
        FiniteGroup(0)


# ---------------------------------------------------------------- bases


def test_steerable_basis_is_closed_under_grid_rotations_and_flips():
    """For 90-degree rotations the analytically rotated basis equals the rotated samples."""
    G = parse_group("D4")
    B = steerable_basis(G, 5)
    for g in range(G.order):
        assert torch.allclose(B[g], transform(B[0], G, g), atol=1e-12)
    assert torch.allclose(B[0].flatten(1).norm(dim=1), torch.ones(B.shape[1], dtype=B.dtype))


def test_steerable_basis_rotation_is_analytic_for_c8():
    """Rotating a harmonic of order n by 45 degrees mixes only its own cos/sin pair."""
    G = parse_group("C8")
    B = steerable_basis(G, 5).flatten(2)  # (8, J, 25)
    # every rotated copy lies in the span of the unrotated basis (exact, no interpolation)
    q, _ = torch.linalg.qr(B[0].T)
    for g in range(G.order):
        residual = B[g].T - q @ (q.T @ B[g].T)
        assert float(residual.abs().max()) < 1e-10


def test_pixel_basis_rejects_off_grid_group():
    with pytest.raises(ValueError, match="C8"):
        pixel_basis(parse_group("C8"), 3)


# ---------------------------------------------------------------- layers


LAYER_CASES = [("C4", "auto"), ("C2", "auto"), ("D4", "auto"), ("C4", "steerable"), ("D2", "auto")]


@pytest.mark.parametrize("name,basis", LAYER_CASES)
def test_each_layer_is_exactly_equivariant(name, basis):
    G = parse_group(name)
    gen = torch.Generator().manual_seed(1)
    layers = [
        (LiftingConv(3, 2, G, basis=basis, generator=gen), "trivial", "regular", 3),
        (GroupConv(2, 3, G, basis=basis, generator=gen), "regular", "regular", 2 * G.order),
        (ProjectionConv(2, 2, G, basis=basis, generator=gen), "regular", "trivial", 2 * G.order),
        (NormNonlinearity(2, G), "regular", "regular", 2 * G.order),
        (nn.LeakyReLU(0.01), "regular", "regular", 2 * G.order),
    ]
    for layer, tin, tout, cin in layers:
        for p in layer.parameters():
            if p.dim() == 1:  # make biases non-zero so that they are tested too
                p.data.uniform_(-0.5, 0.5, generator=gen)
        x = _randn(2, cin, 12, 12, seed=2)
        for g in range(G.order):
            lhs = layer(transform(x, G, g, tin))
            rhs = transform(layer(x), G, g, tout)
            assert _rel(lhs, rhs) <= 1e-5, (type(layer).__name__, g)


def test_ordinary_cnn_is_not_equivariant():
    """Sanity check that the test above can fail: a plain conv breaks 90-degree equivariance."""
    G = parse_group("C4")
    conv = nn.Conv2d(1, 1, 3, padding=1)
    x = _randn(1, 1, 12, 12)
    assert _rel(conv(transform(x, G, 1)), transform(conv(x), G, 1)) > 0.1


def test_d4_network_flip_equivariance_and_c4_is_not_flip_equivariant():
    D4, C4 = parse_group("D4"), parse_group("C4")
    x = _randn(1, 1, 16, 16, seed=3)
    torch.manual_seed(0)

    def net(G):
        return nn.Sequential(
            LiftingConv(1, 2, G), nn.LeakyReLU(0.01), GroupConv(2, 2, G), ProjectionConv(2, 1, G)
        )

    d4, c4 = net(D4), net(C4)
    flip = D4.index(0, 1)
    assert _rel(d4(transform(x, D4, flip)), transform(d4(x), D4, flip)) <= 1e-5
    assert _rel(c4(torch.flip(x, (-1,))), torch.flip(c4(x), (-1,))) > 1e-2


def _rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_c8_is_much_more_equivariant_at_45_degrees_than_an_ordinary_cnn():
    n = 65
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    r = (xx**2 + yy**2).sqrt()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, n, n, generator=g)
    k = torch.exp(-(torch.arange(-8, 9.0) ** 2) / (2 * 2.0**2))
    k = k / k.sum()
    x = F.conv2d(
        F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, 8)), k.view(1, 1, -1, 1), padding=(8, 0)
    )
    x = x * (r < 0.9)
    inside = r < 0.6

    def defect(net):
        with torch.no_grad():
            a, b = net(_rotate(x, math.pi / 4)), _rotate(net(x), math.pi / 4)
        return float(((a - b) * inside).norm() / (b * inside).norm())

    C8 = parse_group("C8")
    eq, ordinary = [], []
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed)
        eq_net = nn.Sequential(
            LiftingConv(1, 4, C8, generator=gen),
            nn.LeakyReLU(0.01),
            GroupConv(4, 4, C8, generator=gen),
            nn.LeakyReLU(0.01),
            ProjectionConv(4, 1, C8, generator=gen),
        )
        torch.manual_seed(seed)
        convs = [nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)]
        convs.append(nn.Conv2d(32, 1, 3, padding=1))
        for conv in convs:  # same (He) initialisation as the equivariant layers
            nn.init.kaiming_normal_(conv.weight, a=0.01, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        ord_net = nn.Sequential(
            convs[0], nn.LeakyReLU(0.01), convs[1], nn.LeakyReLU(0.01), convs[2]
        )
        eq.append(defect(eq_net))
        ordinary.append(defect(ord_net))
    eq_mean, ord_mean = sum(eq) / len(eq), sum(ordinary) / len(ordinary)
    assert eq_mean < 0.5 * ord_mean, (eq, ordinary)


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D3"])
def test_export_gives_identical_outputs(name):
    G = parse_group(name)
    torch.manual_seed(0)
    net = nn.Sequential(
        LiftingConv(2, 3, G),
        nn.LeakyReLU(0.01),
        GroupConv(3, 3, G),
        NormNonlinearity(3, G),
        ProjectionConv(3, 2, G),
    )
    for p in net.parameters():
        if p.dim() == 1:
            p.data.uniform_(-0.3, 0.3)
    plain = export_module(net)
    assert not any(isinstance(m, (LiftingConv, GroupConv, ProjectionConv)) for m in plain.modules())
    x = _randn(2, 2, 10, 10, seed=4)
    with torch.no_grad():
        assert _rel(plain(x), net(x)) <= 1e-6


def test_forward_uses_one_conv_call_and_gradients_reach_coefficients(monkeypatch):
    G = parse_group("C4")
    layer = GroupConv(3, 3, G)
    calls = []
    real = F.conv2d

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting)
    out = layer(_randn(1, 12, 8, 8))
    assert len(calls) == 1
    out.square().sum().backward()
    assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("name,basis", [("C4", "auto"), ("C8", "auto"), ("C4", "steerable")])
def test_generalised_he_initialisation_matches_ordinary_energy(name, basis):
    """Expanded filters have the mean energy of He-initialised filters, gain^2 k^2 / fan_in."""
    G = parse_group(name)
    layer = GroupConv(16, 16, G, basis=basis, gain=1.0, generator=torch.Generator().manual_seed(0))
    w = layer.expanded_weight()
    fan_in = layer.in_channels * 9
    energy = float(w.detach().pow(2).sum(dim=(2, 3)).mean())
    assert energy == pytest.approx(9 / fan_in, rel=0.1)


def test_bad_input_messages():
    G = parse_group("C4")
    with pytest.raises(ValueError, match="in_fields"):
        LiftingConv(0, 2, G)
    with pytest.raises(ValueError, match="group=None"):
        GroupConv(1, 1, None)
    with pytest.raises(ValueError, match="expected"):
        GroupConv(2, 2, G)(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="kernel_size"):
        LiftingConv(1, 1, G, kernel_size=4)
