import pytest
import torch

from spinv.bilevel.implicit import synthetic_image
from spinv.bilevel.lower_level import LowerLevel, make_regulariser


@pytest.fixture
def make_problem():
    def _make(kind="tv", size=16, batch=2, noise=0.02, eps=1e-3, seed=0, gamma=0.05):
        u = synthetic_image(size, seed, batch)
        ref = synthetic_image(size, seed + 7, batch) if kind == "dtv" else None
        reg = make_regulariser(kind, gamma=gamma, levels=2, reference=ref)
        return LowerLevel.from_images(u, reg, noise=noise, eps=eps, seed=seed)

    return _make


def rand_pattern(size, seed=0, lo=0.2, hi=0.9):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(size, size, generator=g, dtype=torch.float64)


def rand_image(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    re = torch.randn(shape, generator=g, dtype=torch.float64)
    im = torch.randn(shape, generator=g, dtype=torch.float64)
    return torch.complex(re, im)


@pytest.fixture
def rp():
    """Random pattern factory ``rp(size, seed=0, lo=0.2, hi=0.9)``."""
    return rand_pattern


@pytest.fixture
def ri():
    """Random complex image factory ``ri(shape, seed=0)``."""
    return rand_image
