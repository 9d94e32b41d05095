"""The chapter-2 protocol options of training configs: CT simulated on a finer grid
(``problem.upsample``) and area-averaged ground truth (``data.resize``)."""

import torch
import torch.nn.functional as F

from spinv.operators.ct import simulate_ct
from spinv.training.config import parse_config
from spinv.training.data import Simulator, generator_for, load_images_for, make_operator


def _cfg(upsample: int) -> object:
    return parse_config({
        "problem": {"kind": "ct", "image_size": 16, "n_angles": 8, "photons": 1e4,
                    "upsample": upsample},
        "model": {"name": "postprocess-cnn"},
    })


def test_upsampled_ct_measurements_are_simulate_ct_with_the_same_generator():
    cfg = _cfg(2)
    sim = Simulator(cfg.problem, make_operator(cfg.problem))
    x = torch.rand(2, 1, 16, 16)
    y = sim.measure(x, [generator_for(0, j) for j in range(2)])
    ref = torch.cat([simulate_ct(x[j : j + 1], 8, photons=1e4, mu=sim.mu, upsample=2,
                                 generator=generator_for(0, j)) for j in range(2)])
    assert torch.equal(y, ref)
    # a finer projection grid is not the model's own operator: no inverse crime
    same_grid = Simulator(_cfg(1).problem, make_operator(_cfg(1).problem))
    y1 = same_grid.measure(x, [generator_for(0, j) for j in range(2)])
    assert y.shape == y1.shape and not torch.allclose(y, y1, atol=1e-3)


def test_area_resize_is_area_averaging_of_the_bundled_slices():
    from spinv.data import load_dataset

    native = torch.from_numpy(load_dataset("ct-head", "val")[:2]).float()[:, None]
    area = load_images_for("ct-head", "val", 64, resize="area")[:2]
    assert torch.allclose(area, F.interpolate(native, size=(64, 64), mode="area").clamp(0, 1))
    bilinear = load_images_for("ct-head", "val", 64)[:2]
    assert not torch.allclose(area, bilinear)
