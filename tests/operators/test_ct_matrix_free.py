"""The matrix-free Joseph projector (spinv.operators.ct_matrix_free): the same operator as the
cached matrix, an exact adjoint, and automatic selection by the memory budget."""

from __future__ import annotations

import math

import pytest
import torch

from spinv.operators import ParallelBeamCT
from spinv.operators.ct_matrix_free import JosephMatrixFree, matrix_fits, matrix_free_fits

GEOMETRIES = [  # (N, views, detectors, detector spacing, pixel size)
    (16, 7, None, 1.0, 1.0),
    (23, 13, 40, 0.7, 1.0),
    (20, 9, 31, 1.0, 0.5),
]


def _pair(n, views, n_det, ds, ps):
    kw = dict(n_detectors=n_det, detector_spacing=ds, pixel_size=ps, cache=False)
    return (ParallelBeamCT(n, views, matrix_free=False, **kw),
            ParallelBeamCT(n, views, matrix_free=True, **kw))


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_matrix_free_equals_matrix_path(geometry):
    dense, free = _pair(*geometry)
    assert free._free is not None and dense._free is None
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, free.image_size, free.image_size, generator=g)
    y = torch.randn(2, 1, *free.sinogram_shape, generator=g)
    for a, b in ((dense(x), free(x)), (dense.adjoint(y), free.adjoint(y))):
        assert float((a - b).abs().max() / a.abs().max()) <= 1e-5


def test_matrix_free_equals_matrix_with_odd_angles_and_small_chunks():
    angles = torch.tensor([0.0, 0.3, math.pi / 4, 1.2, math.pi / 2, 2.0, 3 * math.pi / 4, 3.0])
    dense = ParallelBeamCT(17, angles=angles, matrix_free=False, cache=False)
    op = JosephMatrixFree(17, dense._angles64, dense.n_detectors, chunk_bytes=1)  # 1 view/chunk
    assert op.chunk == 1
    x = torch.rand(3, 17, 17, generator=torch.Generator().manual_seed(1))
    ref = dense(x[:, None])[:, 0]
    assert float((ref - op.forward(x)).abs().max() / ref.abs().max()) <= 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matrix_free_adjointness(dtype):
    op = ParallelBeamCT(31, 17, matrix_free=True, cache=False)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 31, 31, generator=g, dtype=dtype)
    y = torch.randn(3, 2, *op.sinogram_shape, generator=g, dtype=dtype)
    lhs, rhs = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    assert float(abs(lhs - rhs) / abs(lhs)) <= 1e-5
    assert op(x).dtype == dtype


def test_matrix_free_autograd_uses_the_adjoint():
    op = ParallelBeamCT(12, 5, matrix_free=True, cache=False)
    x = torch.randn(1, 1, 12, 12, requires_grad=True)
    y = torch.randn(1, 1, *op.sinogram_shape)
    (op(x) * y).sum().backward()
    assert torch.allclose(x.grad, op.adjoint(y), atol=1e-6)
    z = torch.randn(1, 1, *op.sinogram_shape, requires_grad=True)
    (op.adjoint(z) * x.detach()).sum().backward()
    assert torch.allclose(z.grad, op(x.detach()), atol=1e-5)


def test_selection_by_memory_budget(monkeypatch):
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "1e-4")  # ~105 KiB: the matrix does not fit
    assert not matrix_fits(24, 10, 34) and matrix_free_fits(24, 10, 34)
    op = ParallelBeamCT(24, 10, cache=False)
    assert op._free is not None
    with pytest.raises(ValueError, match="SPINV_MAX_OPERATOR_GIB"):
        op.matrix  # the matrix itself is still refused  # noqa: B018
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "1e-6")  # ~1 KiB: neither fits: refused
    with pytest.raises(ValueError, match="SPINV_MAX_OPERATOR_GIB"):
        ParallelBeamCT(24, 10, cache=False)
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "1")
    assert matrix_fits(24, 10, 34)
    assert ParallelBeamCT(24, 10, cache=False)._free is None


def test_lodopab_geometry_is_matrix_free_within_default_budget(monkeypatch):
    """512^2, 1000 views, 513 detectors: ~13 GiB of matrix, so a 8 GiB budget goes matrix-free
    and one chunk of temporaries stays small."""
    monkeypatch.setenv("SPINV_MAX_OPERATOR_GIB", "8")
    op = ParallelBeamCT(512, 1000, n_detectors=513, cache=False)
    assert op._free is not None
    assert op._free.memory_bytes() <= 64 * 2**20


def test_cached_chunks_give_the_same_result():
    dense = ParallelBeamCT(19, 11, matrix_free=False, cache=False)
    args = (19, dense._angles64, dense.n_detectors)
    cold = JosephMatrixFree(*args, chunk_bytes=1, cache_bytes=0)
    warm = JosephMatrixFree(*args, chunk_bytes=1, cache_bytes=2**30)
    x = torch.rand(2, 19, 19, generator=torch.Generator().manual_seed(3))
    y = cold.forward(x)
    for _ in range(2):  # the second call reads the cache
        assert torch.equal(warm.forward(x), y)
        assert torch.equal(warm.adjoint(y), cold.adjoint(y))
    assert cold.memory_bytes() < warm.memory_bytes()
    assert warm.memory_bytes() - cold.memory_bytes() == 16 * 11 * dense.n_detectors * 19
