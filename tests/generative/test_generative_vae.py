"""GaussianVAE: shapes, initial covariance, ELBO training (on the engine) lowers the loss, run
directories round-trip through load_vae, seeded augmentation."""

import math

import numpy as np
import pytest
import torch

from spinv.generative.train import SliceSampler, TrainSettings, elbo_terms
from spinv.nn.vae import COVARIANCE_KINDS, GaussianVAE
from spinv.training.rundir import open_run
from spinv.training.vae import load_vae, train_vae, vae_run_config


def _images(n=6, size=32, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.35, 0.65, 2).tolist() + [rng.uniform(0.2, 0.35)]
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2).astype(np.float32)
        out.append(0.2 + 0.6 * disc)
    return np.stack(out)


@pytest.mark.parametrize("kind", COVARIANCE_KINDS)
def test_shapes_and_identity_start(kind):
    torch.manual_seed(0)
    vae = GaussianVAE(image_size=16, latent_dim=3, width=4, covariance=kind, rank=2, radius=1)
    u = torch.rand(2, 1, 16, 16)
    mu, logvar = vae.encode(u)
    assert mu.shape == logvar.shape == (2, 3)
    cov = vae.covariance(mu)
    # zero-initialised heads: Sigma = gamma I at the start, gamma = 0.01 (up to the smooth
    # clamp of the log-variances, which moves log(0.01) by < 1e-3)
    expected = 256 * math.log(0.01)
    assert torch.allclose(cov.logdet(), torch.full((2,), expected), rtol=1e-3)
    r = torch.randn(2, 1, 16, 16)
    assert torch.allclose(cov.apply_precision(r), r / 0.01, rtol=2e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        GaussianVAE(image_size=20)
    with pytest.raises(ValueError, match="covariance"):
        GaussianVAE(image_size=16, covariance="full")
    vae = GaussianVAE(image_size=16, latent_dim=2, width=4)
    with pytest.raises(ValueError, match="expected \\(B, 1, 16, 16\\)"):
        vae.encode(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="stage"):
        TrainSettings(stage="other")
    with pytest.raises(ValueError, match="steps"):
        TrainSettings(steps=0)


def test_sampler_is_seeded():
    s = SliceSampler(_images(3, 64), size=16)
    a = s.sample(4, torch.Generator().manual_seed(3))
    b = s.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (4, 1, 16, 16)


def test_training_lowers_the_negative_elbo_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    sampler = SliceSampler(_images(8, 64), size=16, zoom=(0.9, 1.0))
    vae = GaussianVAE(image_size=16, latent_dim=4, width=4, covariance="precision", radius=1)
    x = sampler.sample(32, torch.Generator().manual_seed(123))

    def loss(stage):
        with torch.no_grad():
            return float(elbo_terms(vae, x, torch.Generator().manual_seed(0), stage)["loss"])

    before = loss("mean")
    train_vae(vae, sampler, TrainSettings("mean", steps=40, batch_size=8, lr=3e-3),
              progress=False)
    after = loss("mean")
    assert after < before - 100, (before, after)  # nats, for 32 images of 256 pixels
    before_cov = loss("covariance")
    enc_state = {k: v.clone() for k, v in vae.encoder.state_dict().items()}
    settings = TrainSettings("covariance", steps=20, batch_size=8, lr=3e-3)
    with open_run(tmp_path / "vae", vae_run_config(vae, settings)) as run:
        history = train_vae(vae, sampler, settings, progress=False, log_every=8, run=run)
    assert loss("covariance") < before_cov
    assert [h["step"] for h in history] == [8, 16, 20]
    # the covariance stage leaves the encoder untouched
    assert all(torch.equal(v, vae.encoder.state_dict()[k]) for k, v in enc_state.items())

    back = load_vae(tmp_path / "vae")
    z = torch.randn(3, 4)
    assert torch.equal(back.decode_mean(z), vae.decode_mean(z))
    assert torch.allclose(back.covariance(z).logdet(), vae.covariance(z).logdet())


def test_load_rejects_foreign_checkpoint(tmp_path):
    from spinv.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other", torch.nn.Linear(2, 2), None, step=0, config={"x": 1})
    with pytest.raises(ValueError, match="not a spinv generative VAE"):
        load_vae(tmp_path / "other")


def test_lowrank_factors_receive_gradient_at_initialisation():
    # V = 0 would be a stationary point of the likelihood; the head must start away from it
    torch.manual_seed(0)
    vae = GaussianVAE(image_size=16, latent_dim=3, width=4, covariance="lowrank", rank=2)
    x = torch.rand(4, 1, 16, 16)
    elbo_terms(vae, x, torch.Generator().manual_seed(0), "covariance")["loss"].backward()
    grad = vae.cov_head.body[-1].weight.grad
    assert float(grad[1:].abs().max()) > 0
