"""Smoke tests of the chapter-3 experiment functions (tiny sizes; real runs go to benchmarks)."""

from __future__ import annotations

import json

import torch

from spinv.experiments.nonexpansive.config import DenoiseConfig, ToyConfig
from spinv.experiments.nonexpansive.denoising import (
    DenoiseHooks,
    default_models,
    denoising_experiment,
    evaluate_denoiser,
    tv_denoise,
    write_json,
)
from spinv.experiments.nonexpansive.toy import toy_absolute_value


def test_toy_nonexpansive_fit_has_slope_at_most_one():
    r = toy_absolute_value(ToyConfig(steps=40, seed=1))
    assert r["nonexpansive_max_slope"] <= 1.0 + 1e-5
    assert r["certified_lipschitz"] <= 1.0
    assert len(r["train_x"]) == 6


def test_tv_denoising_improves_psnr():
    g = torch.Generator().manual_seed(0)
    clean = torch.zeros(1, 1, 32, 32)
    clean[..., 8:24, 8:24] = 1.0
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=g)
    before = evaluate_denoiser(lambda y: y, clean, noisy)["psnr_mean"]
    after = evaluate_denoiser(lambda y: tv_denoise(y, 0.2), clean, noisy)["psnr_mean"]
    assert after > before + 5.0


def test_denoising_experiment_smoke(tmp_path):
    models = {k: v for k, v in default_models(4, 2).items() if k.startswith(("euler-R-g1.99",
                                                                             "rk4"))}
    out = tmp_path / "r.json"
    options = DenoiseConfig(sigma=0.2, steps=2, width=4, depth=2, dncnn_depth=3, crop=16,
                            batch_size=2, test_size=32, include_tv=False, device="cpu")
    saved_after = []

    def on_save(result):
        saved_after.append(list(result["models"]))
        write_json(out, result)

    r = denoising_experiment(options, models, DenoiseHooks(log=lambda s: None, on_save=on_save,
                                                           runs_dir=tmp_path / "runs"))
    assert saved_after == [["dncnn"], ["dncnn", "euler-R-g1.99"],
                           ["dncnn", "euler-R-g1.99", "rk4-R-g1.99"]]
    saved = json.loads(out.read_text())
    assert set(saved["models"]) == {"dncnn", "euler-R-g1.99", "rk4-R-g1.99"}
    for name, m in r["models"].items():
        assert len(m["psnr"]) == r["config"]["n_test"]
        if name != "dncnn":
            assert m["certified_lipschitz"] <= 1 + 1.99 + 1e-9
    assert len(default_models(8, 3)) == 8
    for name in r["models"]:  # every network left a finished run directory
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["step"] == 2 and (tmp_path / "runs" / name / "problem.json").is_file()


def test_pnp_convergence_experiment_averaged_vs_unconstrained(tmp_path):
    from spinv.experiments.nonexpansive.pnp_convergence import pnp_convergence_experiment

    r = pnp_convergence_experiment("ct", size=16, iterations=40, plot=tmp_path / "p.png",
                                   out=tmp_path / "p.json")
    runs = r["runs"]
    avg = runs["averaged (tied, gamma=1.99)"]
    assert avg["certified_averagedness"] == 0.995
    assert avg["final_relative_residual"] < 1e-3 * avg["relative_residuals"][0]
    assert (tmp_path / "p.png").is_file() and json.loads((tmp_path / "p.json").read_text())
