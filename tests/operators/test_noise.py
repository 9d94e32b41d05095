"""Statistics of the low-dose CT noise model (thesis §2.5.1) and generic noise helpers."""

import math

import pytest
import torch

from spinv.operators.noise import (
    default_mu,
    gaussian_noise,
    make_generator,
    poisson_post_log,
)


def test_poisson_post_log_high_count_statistics():
    """For large counts y ~ Ru + eps with Var eps = exp(mu Ru) / (mu^2 N_in)."""
    line, mu, photons = 40.0, 0.025, 1e4  # optical depth 1: ~3679 photons per bin
    sino = torch.full((4, 1, 100, 250), line)
    y = poisson_post_log(sino, mu=mu, photons=photons, seed=0)
    var = math.exp(mu * line) / (mu**2 * photons)  # 0.435
    # 1e5 samples: sd of the mean 2e-3, bias of the log ~ var*mu/2 ~ 5e-3
    assert abs(float(y.mean()) - line) < 0.03
    assert abs(float(y.var()) / var - 1) < 0.03
    # the underlying counts have Poisson mean and variance N_in exp(-mu Ru)
    counts = photons * torch.exp(-mu * y.double())
    rate = photons * math.exp(-mu * line)
    assert abs(float(counts.mean()) / rate - 1) < 2e-3
    assert abs(float(counts.var()) / rate - 1) < 0.03


def test_poisson_floor_eta_and_dtype():
    sino = torch.full((1, 1, 3, 5), 1e4, dtype=torch.float64)  # no photon survives
    y = poisson_post_log(sino, mu=0.05, seed=1)
    assert y.dtype == torch.float64
    assert torch.allclose(y, torch.full_like(y, -math.log(1e-8) / 0.05))
    y = poisson_post_log(sino, mu=0.05, eta=1e-3, seed=1)
    assert torch.allclose(y, torch.full_like(y, -math.log(1e-3) / 0.05))


def test_poisson_reproducible_with_seed_and_generator():
    sino = torch.rand(2, 1, 8, 9) * 30
    a = poisson_post_log(sino, mu=0.05, seed=5)
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(a, poisson_post_log(sino, mu=0.05, generator=gen))
    assert not torch.equal(a, poisson_post_log(sino, mu=0.05, seed=6))


def test_default_mu_scales_with_grid():
    assert math.isclose(default_mu(512), 0.04 * 350 / 512)
    assert math.isclose(default_mu(256) * 256, default_mu(128) * 128)
    with pytest.raises(ValueError, match="image_size"):
        default_mu(0)


def test_gaussian_noise_and_generator_helpers():
    x = torch.zeros(1, 1, 300, 300)
    n = gaussian_noise(x, 0.2, seed=0)
    assert abs(float(n.std()) - 0.2) < 0.004 and abs(float(n.mean())) < 0.003
    assert make_generator() is None
    with pytest.raises(ValueError, match="seed or generator"):
        make_generator(1, torch.Generator())
    with pytest.raises(TypeError, match="seed"):
        make_generator(1.5)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"mu": 0.0}, "mu"),
        ({"mu": 0.1, "photons": -1}, "photons"),
        ({"mu": 0.1, "eta": 2.0}, "eta"),
    ],
)
def test_bad_noise_parameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        poisson_post_log(torch.zeros(1, 1, 2, 2), **kwargs)
