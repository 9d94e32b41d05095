"""DnCNN baseline: architecture of Zhang et al. (2017) and a valid (loose) Lipschitz bound."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spinv.nn.dncnn import DnCNN
from spinv.nn.lipschitz import jacobian_power_iteration, random_pairs_lipschitz


def test_default_architecture_has_20_conv_layers():
    net = DnCNN(1, width=8, seed=0)
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.body) == 18
    x = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    assert net(x).shape == x.shape


@pytest.mark.parametrize("residual", [True, False])
def test_lipschitz_upper_bound_dominates_estimates(residual):
    net = DnCNN(1, width=6, depth=5, residual=residual, zero_last=False,
                seed=1)
    # give batch norm non-trivial running statistics, then evaluate
    net.train()
    with torch.no_grad():
        net(torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2)))
    net.eval()
    bound = net.lipschitz_upper_bound()
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    assert jacobian_power_iteration(net, x) <= bound
    assert random_pairs_lipschitz(net, (2, 1, 16, 16), n=8) <= bound


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        DnCNN(1, depth=1)
    with pytest.raises(ValueError, match="width"):
        DnCNN(1, width=0)


def test_zero_last_starts_at_the_identity():
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(DnCNN(1, width=4, depth=5, seed=0)(x), x)
    assert not torch.allclose(DnCNN(1, width=4, depth=5, zero_last=False, seed=0)(x), x)


@pytest.mark.parametrize("dataset", ["brain-t1", "ct-head"])
def test_dncnn_training_beats_the_identity(dataset):
    """Regression: at width 16 / depth 17 without batch norm, the Kaiming-initialised last
    layer let brain-t1 training collapse to the identity (loss = sigma^2, issue 7)."""
    from spinv.experiments.nonexpansive.denoiser_training import DenoiserTraining, train_denoiser
    from spinv.training.data import load_images_for

    images = load_images_for(dataset, "train", 64)
    sigma = 0.05
    net = DnCNN(1, width=16, depth=17, batch_norm=False, seed=0)
    info = train_denoiser(net, images, DenoiserTraining(sigma, 40, 5, 32, 1e-3, 0, "cosine"))
    assert info["final_loss"] < 0.8 * sigma ** 2
