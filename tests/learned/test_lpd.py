"""Learned primal-dual with equivariant primal blocks: CT and MRI, export, equivariant parts."""

from __future__ import annotations

import pytest
import torch

from spinv.learned import LearnedPrimalDual
from spinv.nn.equivariant import GroupConv, LiftingConv, ProjectionConv
from spinv.nn.groups import parse_group, transform
from spinv.operators import Identity


def _rel(a, b):
    return float((a - b).detach().abs().norm() / b.detach().abs().norm())


def _ct(n=16):
    ct = pytest.importorskip("spinv.operators.ct")
    return ct.ParallelBeamCT(n, n_angles=8, cache=False)


def _mri(n=16):
    mri = pytest.importorskip("spinv.operators.mri")
    mask = torch.zeros(n, n)
    mask[:, ::2] = 1.0
    return mri.SubsampledFourier(mask)


@pytest.mark.parametrize("kind", ["ct", "mri"])
@pytest.mark.parametrize("group", [None, "C4"])
def test_runs_with_finite_outputs_and_gradients(kind, group):
    A = _ct() if kind == "ct" else _mri()
    model = LearnedPrimalDual(A, group=group, iterations=2, width=8, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 16, 16, generator=gen)
    y = A(x if kind == "ct" else x.to(torch.complex64))
    out = model(y)
    assert out.shape == (2, 1, 16, 16)
    assert out.dtype == (torch.float32 if kind == "ct" else torch.complex64)
    assert bool(torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all())
    loss = (out - (x if kind == "ct" else x.to(torch.complex64))).abs().square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert float(model.primal[0].convs[0].weight.grad.abs().sum()) > 0
    assert float(model.dual[0].convs[0].weight.grad.abs().sum()) > 0


def test_primal_blocks_are_equivariant_and_dual_blocks_ordinary():
    model = LearnedPrimalDual(Identity(), group="C4", iterations=1, width=16, seed=0)
    G = parse_group("C4")
    block = model.primal[0]
    assert isinstance(block.convs[0], LiftingConv) and isinstance(block.convs[1], GroupConv)
    assert isinstance(block.convs[2], ProjectionConv)
    assert isinstance(model.dual[0].convs[0], torch.nn.Conv2d)
    x = torch.randn(1, 6, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert _rel(block(transform(x, G, 1)), transform(block(x), G, 1)) <= 1e-5


def test_export_matches():
    A = _ct()
    model = LearnedPrimalDual(A, group="C4", iterations=2, width=8, seed=0)
    y = A(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1)))
    plain = model.export()
    with torch.no_grad():
        assert _rel(plain(y), model(y)) <= 1e-6


def test_registry_builds_lpd():
    registry = pytest.importorskip("spinv.training.registry")
    model = registry.build_model("lpd", {"group": "C8", "width": 16, "iterations": 1}, Identity())
    assert isinstance(model, LearnedPrimalDual)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_dual="):
        LearnedPrimalDual(Identity(), n_dual=0)


def test_runs_under_bfloat16_autocast():
    A = _ct()
    model = LearnedPrimalDual(A, group="C4", iterations=2, width=8, seed=0)
    y = A(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        ref = model(y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(y)
    assert low.dtype == torch.float32 and bool(torch.isfinite(low).all())
    assert _rel(low, ref) < 0.1
