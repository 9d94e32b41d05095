"""Smoke test of the CT equivariance experiment (tiny sizes; the real run lives in experiments/)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("spinv.operators.ct")
pytest.importorskip("spinv.data.transforms")


def test_run_ct_comparison_smoke(tmp_path):
    from spinv.experiments.equivariance.comparison import run_ct_comparison
    from spinv.experiments.equivariance.training import LPGSettings

    settings = LPGSettings(steps=3, width=8, iterations=1, seed=0, bf16=True)
    out = run_ct_comparison(n_train=3, groups=(None, "C4"), settings=settings, image_size=24,
                            n_test=2, out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["results"]) == {"ordinary", "C4"}
    for name in ("ordinary", "C4"):
        for split in ("upright", "rotated"):
            metrics = out["results"][name][split]
            assert len(metrics["psnr"]) == 2
            assert all(math.isfinite(v) for v in metrics["psnr"] + metrics["ssim_roi"])
    assert "| C4 | rotated |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "models" / "C4" / "spinv-run.json").is_file()
    with pytest.raises(ValueError, match="steps="):
        LPGSettings(steps=0)


def _mean_gradient_magnitude(x):
    dx = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dy = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return float(dx + dy)


def test_rotated_test_set_keeps_the_sharpness_of_the_upright_one():
    """Rotating at the bundled resolution, then area-averaging, does not blur the rotated test
    images the way rotating at the working resolution does (thesis Appendix 2.A)."""
    import torch

    from spinv.data.transforms import rotate
    from spinv.experiments.equivariance.data import downsample, load_ct_slices, prepare_ct_data

    data = prepare_ct_data(1, image_size=32, n_test=6, n_angles=10, seed=3)
    sharp = _mean_gradient_magnitude(data.x_test)
    native_rot = _mean_gradient_magnitude(data.x_rot)
    naive_rot = _mean_gradient_magnitude(rotate(data.x_test, data.angles).clamp(0, 1))
    assert abs(native_rot - sharp) / sharp < 0.05
    assert naive_rot < 0.95 * sharp  # what the native-resolution rotation avoids
    # a quarter turn is exact: the rotated set is the rotated downsampled upright set
    native = load_ct_slices("test", 2, None)
    quarter = downsample(rotate(native, 90.0), 32)
    assert torch.allclose(quarter, torch.rot90(downsample(native, 32), 1, (2, 3)), atol=1e-6)
