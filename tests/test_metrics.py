"""Tests of spinv.metrics: agreement with scikit-image, masked semantics, known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from spinv.metrics import mse, psnr, ssim, ssim_map


def _pair(shape, seed, noise=0.1, scale=1.0):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape) * scale
    # smooth-ish reference so the SSIM is not trivially near zero
    ref = (ref + np.roll(ref, 1, -1) + np.roll(ref, 1, -2)) / 3
    x = ref + noise * scale * rng.standard_normal(shape)
    return x, ref


@pytest.mark.parametrize("shape", [(7, 7), (16, 23), (64, 64), (33, 48)])
@pytest.mark.parametrize("data_range", [1.0, 2.5, 255.0])
def test_ssim_equals_skimage(shape, data_range):
    x, ref = _pair(shape, seed=sum(shape), scale=data_range)
    expected = structural_similarity(x, ref, data_range=data_range)
    got = ssim(torch.from_numpy(x), torch.from_numpy(ref), data_range=data_range)
    assert got.shape == (1,)
    assert abs(float(got[0]) - expected) < 1e-5


def test_ssim_batched_and_layouts_equal_skimage():
    x, ref = _pair((3, 40, 37), seed=3)
    expected = [structural_similarity(x[i], ref[i], data_range=1.0) for i in range(3)]
    for xx, rr in [(x, ref), (x[:, None], ref[:, None])]:
        got = ssim(torch.from_numpy(xx).float(), torch.from_numpy(rr).float(), data_range=1.0)
        assert got.shape == (3,) and got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    # numpy input accepted too; default data_range is 1 (thesis constants c1=1e-4, c2=9e-4)
    np.testing.assert_allclose(ssim(x, ref).numpy(), expected, atol=1e-5)


def test_ssim_channels_average_like_skimage_channel_axis():
    x, ref = _pair((2, 3, 20, 20), seed=5)
    for i in range(2):
        expected = structural_similarity(x[i], ref[i], data_range=1.0, channel_axis=0)
        assert abs(float(ssim(x, ref)[i]) - expected) < 1e-5


def test_ssim_full_map_equals_skimage_full():
    x, ref = _pair((25, 30), seed=7)
    _, full = structural_similarity(x, ref, data_range=1.0, full=True)
    got = ssim_map(torch.from_numpy(x), torch.from_numpy(ref))[0, 0].numpy()
    np.testing.assert_allclose(got, full, atol=1e-8)


def test_masked_ssim_is_mean_of_map_over_mask():
    x, ref = _pair((30, 30), seed=11)
    _, full = structural_similarity(x, ref, data_range=1.0, full=True)
    mask = np.zeros((30, 30), dtype=bool)
    mask[2:12, 5:25] = True
    got = ssim(x, ref, mask=mask)
    assert abs(float(got[0]) - full[mask].mean()) < 1e-6
    # full mask = mean of the uncropped map (differs from the cropped default)
    whole = ssim(x, ref, mask=np.ones((30, 30), bool))
    assert abs(float(whole[0]) - full.mean()) < 1e-6
    assert abs(float(whole[0]) - float(ssim(x, ref)[0])) > 1e-6


def test_masked_ssim_ignores_outside():
    x, ref = _pair((32, 32), seed=13)
    mask = np.zeros((32, 32), dtype=bool)
    mask[:, :12] = True
    y = x.copy()
    y[:, 20:] = 0.0  # changes at distance > 3 from the mask leave the masked SSIM unchanged
    assert float(ssim(x, ref, mask=mask)[0]) == pytest.approx(float(ssim(y, ref, mask=mask)[0]))
    assert float(ssim(x, ref)[0]) != pytest.approx(float(ssim(y, ref)[0]))


def test_psnr_known_values():
    ref = torch.full((2, 1, 4, 4), 0.5)
    ref[:, :, 0, 0] = 1.0
    x = ref.clone()
    x[0] += 0.1  # MSE 0.01, peak 1 -> 20 dB
    x[1, :, :2] += 0.2  # MSE 0.04 * 8/16 = 0.02 -> 10 log10(50)
    got = psnr(x, ref)
    np.testing.assert_allclose(got.numpy(), [20.0, 10 * math.log10(50)], atol=1e-4)
    # explicit data range
    np.testing.assert_allclose(
        psnr(x, ref, data_range=2.0).numpy(),
        [20 + 20 * math.log10(2), 10 * math.log10(200)],
        atol=1e-4,
    )
    assert torch.isinf(psnr(ref, ref)).all()


def test_psnr_uses_max_abs_of_ref_and_matches_skimage_form():
    from skimage.metrics import peak_signal_noise_ratio

    x, ref = _pair((20, 20), seed=2)
    ref[0, 0] = -3.0  # the peak is max |ref|, not max - min
    expected = peak_signal_noise_ratio(ref, x, data_range=3.0)
    assert float(psnr(x, ref)[0]) == pytest.approx(expected, abs=1e-4)


def test_masked_psnr_semantics():
    ref = torch.zeros(1, 1, 6, 6)
    ref[..., :3, :] = 0.8
    x = ref.clone()
    x[..., 3:, :] += 1.0  # error only outside the mask
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[:3] = True
    x[..., 0, 0] += 0.08  # inside: MSE = 0.0064 / 18, peak 0.8 (max over the mask)
    expected = 10 * math.log10(0.64 / (0.0064 / 18))
    assert float(psnr(x, ref, mask=mask)[0]) == pytest.approx(expected, abs=1e-3)
    assert float(mse(x, ref, mask=mask)[0]) == pytest.approx(0.0064 / 18, rel=1e-4)


def test_complex_inputs_use_magnitude():
    x, ref = _pair((2, 1, 16, 16), seed=9)
    phase = torch.exp(1j * torch.linspace(0, 3, 16))
    xc = torch.from_numpy(x) * phase
    rc = torch.from_numpy(ref) * phase.conj()
    np.testing.assert_allclose(ssim(xc, rc).numpy(), ssim(np.abs(x), np.abs(ref)).numpy())
    np.testing.assert_allclose(psnr(xc, rc).numpy(), psnr(np.abs(x), np.abs(ref)).numpy())


def test_ssim_is_differentiable():
    x, ref = _pair((1, 1, 16, 16), seed=4)
    xt = torch.from_numpy(x).requires_grad_(True)
    ssim(xt, torch.from_numpy(ref)).sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(1, 8, 8), torch.zeros(1, 8, 9)), "same shape"),
        ((torch.full((8, 8), float("nan")), torch.zeros(8, 8)), "NaN"),
        ((torch.zeros(2, 1, 1, 8, 8), torch.zeros(2, 1, 1, 8, 8)), "shape"),
    ],
)
def test_bad_inputs_raise(args, match):
    for f in (psnr, ssim):
        with pytest.raises(ValueError, match=match):
            f(*args)


def test_bad_mask_and_range_raise():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="empty"):
        ssim(x, x, mask=torch.zeros(8, 8))
    with pytest.raises(ValueError, match="broadcast"):
        psnr(x, x, mask=torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x + 1, data_range=-1.0)
    with pytest.raises(ValueError, match="win_size"):
        ssim(torch.rand(5, 5), torch.rand(5, 5))
    with pytest.raises(TypeError, match="x must be"):
        psnr([1.0], torch.zeros(1))
