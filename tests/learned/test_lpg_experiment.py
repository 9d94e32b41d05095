"""Smoke test of the CT equivariance experiment (tiny sizes; the real run lives in experiments/)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("spinv.operators.ct")
pytest.importorskip("spinv.data.transforms")


def test_run_ct_comparison_smoke(tmp_path):
    from spinv.experiments.equivariance import run_ct_comparison

    out = run_ct_comparison(
        n_train=3,
        groups=(None, "C4"),
        steps=3,
        image_size=24,
        n_test=2,
        width=8,
        iterations=1,
        seed=0,
        out_dir=tmp_path,
        bf16=True,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["results"]) == {"ordinary", "C4"}
    for name in ("ordinary", "C4"):
        for split in ("upright", "rotated"):
            metrics = out["results"][name][split]
            assert len(metrics["psnr"]) == 2
            assert all(math.isfinite(v) for v in metrics["psnr"] + metrics["ssim_roi"])
    assert "| C4 | rotated |" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match="steps="):
        run_ct_comparison(steps=0)
