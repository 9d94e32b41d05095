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


def test_zoom_train_shrinks_samples_about_the_centre_reproducibly():
    from spinv.training.data import TrainingData, zoom_out

    x = torch.zeros(1, 1, 16, 16)
    x[..., 4:12, 4:12] = 1.0
    small = zoom_out(x, 0.5)
    assert torch.allclose(small.sum(), x.sum() / 4, rtol=0.05)  # area scales by factor^2
    assert small[..., :5, :].abs().max() == 0 and small[..., 11:, :].abs().max() == 0
    cfg = parse_config({
        "problem": {"kind": "denoise", "image_size": 16, "noise_sigma": 0.0},
        "data": {"dataset": "natural", "zoom_train": 0.5, "val_size": 0},
        "train": {"batch_size": 2}})
    images = torch.rand(3, 1, 16, 16)
    data = TrainingData(cfg, make_operator(cfg.problem), images=images)
    a, _ = data.batch(5)
    b, _ = data.batch(5)
    assert torch.equal(a, b)  # a pure function of (seed, step): resume sees the same data
    plain = parse_config({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "zoom_train": None}})
    c, _ = TrainingData(plain, make_operator(plain.problem), images=images).batch(5)
    assert a.abs().sum() < c.abs().sum()  # zoomed out: less of the field is covered
