"""Learned proximal gradient (Algorithm 5): equivariance, export, data terms, training."""

from __future__ import annotations

import pytest
import torch

from spinv.learned import LearnedProximalGradient
from spinv.nn.equivariant import GroupConv, LiftingConv, ProjectionConv
from spinv.nn.groups import parse_group, transform
from spinv.operators import Identity


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().norm() / b.detach().abs().norm())


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Make the zero-initialised hidden convolutions and all biases non-zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_whole_model_is_exactly_equivariant_with_identity(group):
    G = parse_group(group)
    model = LearnedProximalGradient(Identity(), group=group, width=16, iterations=3, seed=0)
    _perturb(model)
    y = _randn(2, 1, 16, 16, seed=1)
    with torch.no_grad():
        out = model(y)
        for g in range(1, G.order):
            assert _rel(model(transform(y, G, g)), transform(out, G, g)) <= 1e-5, g


def test_ordinary_model_is_not_rotation_equivariant():
    G = parse_group("C4")
    model = LearnedProximalGradient(Identity(), group=None, width=16, iterations=3, seed=0)
    _perturb(model)
    y = _randn(2, 1, 16, 16, seed=1)
    with torch.no_grad():
        assert _rel(model(transform(y, G, 1)), transform(model(y), G, 1)) > 1e-3


@pytest.mark.parametrize("group,fields", [(None, 96), ("C4", 24), ("C8", 12), ("D4", 12)])
def test_widths_are_matched(group, fields):
    model = LearnedProximalGradient(Identity(), group=group, width=96, iterations=1, seed=0)
    block = model.blocks[0]
    assert block.lift.out_channels == 96
    if group is not None:
        assert isinstance(block.lift, LiftingConv) and block.lift.out_fields == fields
        assert isinstance(block.hidden, GroupConv) and isinstance(block.project, ProjectionConv)
    # the hidden convolution starts at zero (Section 2.5.2)
    assert float(block.hidden.weight.detach().abs().sum()) == 0.0


@pytest.mark.parametrize("group", [None, "C4", "C8", "D4"])
def test_export_matches(group):
    model = LearnedProximalGradient(Identity(), group=group, width=16, iterations=2, seed=0)
    _perturb(model)
    plain = model.export()
    assert plain.operator is model.operator
    assert not any(isinstance(m, (LiftingConv, GroupConv, ProjectionConv)) for m in plain.modules())
    y = _randn(1, 1, 12, 12, seed=2)
    with torch.no_grad():
        assert _rel(plain(y), model(y)) <= 1e-6


def _ct(n=16):
    ct = pytest.importorskip("spinv.operators.ct")
    return ct.ParallelBeamCT(n, n_angles=8, cache=False)


def _mri(n=16):
    mri = pytest.importorskip("spinv.operators.mri")
    mask = torch.zeros(n, n)
    mask[:, ::3] = 1.0
    mask[:, n // 2 - 1 : n // 2 + 2] = 1.0
    return mri.SubsampledFourier(mask)


def test_ct_model_shapes_step_size_and_gradient():
    A = _ct()
    model = LearnedProximalGradient(A, group="C4", width=8, iterations=2, seed=0)
    assert float(model.step_size) == pytest.approx(1.0 / A.norm(A.image_shape) ** 2, rel=1e-4)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    out = model(A(x))
    assert out.shape == (2, 1, 16, 16) and out.dtype == torch.float32
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert float(model.blocks[0].lift.weight.grad.abs().sum()) > 0


def test_mri_model_returns_complex_and_matches_gradient_formula():
    A = _mri()
    model = LearnedProximalGradient(A, group="C4", width=8, iterations=2, seed=0)
    assert float(model.step_size) == pytest.approx(1.0, rel=1e-3)  # orthonormal FFT, S in {0,1}
    x = torch.complex(_randn(1, 1, 16, 16, seed=0), _randn(1, 1, 16, 16, seed=1))
    y = A(x)
    # the network receives (u, s, tau * A^*(Au - y)); check the first input through a hook
    seen = []
    model.blocks[1].register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    out = model(y)
    assert out.shape == (1, 1, 16, 16) and out.dtype == torch.complex64
    u = seen[0][:, :2]
    u_c = torch.complex(u[:, :1], u[:, 1:2])
    grad = A.adjoint(A(u_c) - y) * model.step_size
    assert _rel(seen[0][:, 7:9], torch.cat([grad.real, grad.imag], dim=1)) <= 1e-5
    out.abs().square().mean().backward()
    assert float(model.blocks[0].lift.weight.grad.abs().sum()) > 0


def test_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    A = _ct(16)
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    centres = torch.rand(8, 2, generator=gen) * 0.8 - 0.4
    radii = torch.rand(8, generator=gen) * 0.3 + 0.2
    x = (xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2
    x = (x < radii[:, None, None] ** 2).float()[:, None]
    y = A(x)
    model = LearnedProximalGradient(A, group="C4", width=8, iterations=2, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn():
        return (model(y) - x).square().mean()

    with torch.no_grad():
        initial = float(loss_fn())
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = float(loss_fn())
    assert final < 0.5 * initial, (initial, final)


def test_registry_builds_lpg():
    registry = pytest.importorskip("spinv.training.registry")
    model = registry.build_model("lpg", {"group": "C4", "width": 8, "iterations": 1}, Identity())
    assert isinstance(model, LearnedProximalGradient) and model.group.name == "C4"
    with pytest.raises(ValueError, match="unknown option of 'lpg'"):
        registry.build_model("lpg", {"depth": 3}, Identity())


def test_bad_arguments():
    with pytest.raises(ValueError, match="group="):
        LearnedProximalGradient(Identity(), group="SO3")
    with pytest.raises(ValueError, match="iterations="):
        LearnedProximalGradient(Identity(), iterations=0)
    with pytest.raises(ValueError, match="step_size="):
        LearnedProximalGradient(Identity(), step_size=-1.0)
    with pytest.raises(TypeError, match="operator="):
        LearnedProximalGradient(lambda x: x)


def _disc(n=32):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    return ((xx / 0.8) ** 2 + (yy / 0.6) ** 2 < 1).float()[None, None] * 0.5


def test_untrained_models_have_comparable_bounded_output_scales():
    """Initialisation keeps the unrolled iteration stable for ordinary and equivariant models.

    (Without the 1/sqrt|H| correction of the projection init, C8 outputs reached ~1e5 here.)
    """
    A = _ct(32)
    x = _disc(32)
    y = A(x)
    for group in (None, "C4", "C8", "D4"):
        model = LearnedProximalGradient(A, group=group, width=96, iterations=8, seed=0)
        with torch.no_grad():
            rms = float(model(y).square().mean().sqrt())
        assert rms < 2.0, (group, rms)


def test_autocast_keeps_physics_in_full_precision_and_channels_last_is_equivalent():
    A = _ct(16)
    x = _disc(16)
    y = A(x)
    model = LearnedProximalGradient(A, group="C4", width=16, iterations=3, seed=0)
    _perturb(model, scale=0.05)
    fast = LearnedProximalGradient(
        A, group="C4", width=16, iterations=3, seed=0, channels_last=True
    )
    fast.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref = model(y)
        assert _rel(fast(y), ref) <= 1e-5
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fast(y)
    assert low.dtype == torch.float32
    assert _rel(low, ref) < 0.1
