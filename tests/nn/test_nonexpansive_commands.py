"""End-to-end smoke runs of ``spinv nonexpansive toy|denoise|pnp`` and config validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from spinv.cli import main
from spinv.experiments.nonexpansive import DENOISE, PNP
from spinv.experiments.protocol import find

SMOKE = str(Path(__file__).resolve().parents[2] / "configs" / "nonexpansive-smoke.yaml")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _run(*args: str) -> int:
    return main(["nonexpansive", *args, "--quiet"])


def _outputs(out: Path, figures: list[str]) -> dict:
    for name in ("results.json", "results.md", *figures):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    return json.loads((out / "results.json").read_text())


def test_toy_command(tmp_path):
    assert _run("toy", SMOKE, "--out", str(tmp_path), "--seed", "3") == 0
    r = _outputs(tmp_path, ["toy_fit.png"])
    assert r["config"]["seed"] == 3
    res = r["result"]
    # the fitted nonexpansive network is 1-Lipschitz: no slope on the grid may exceed 1
    assert res["nonexpansive_max_slope"] <= 1.0 + 1e-5
    assert res["certified_lipschitz"] <= 1.0
    assert all(math.isfinite(v) for v in res["nonexpansive"] + res["unconstrained"])


def test_denoise_command(tmp_path):
    assert _run("denoise", SMOKE, "--out", str(tmp_path)) == 0
    r = _outputs(tmp_path, ["psnr.png"])
    assert set(r["models"]) == {"tv", "dncnn", "euler-R-g1.99", "rk4-R-g1.99"}
    for name, m in r["models"].items():
        assert len(m["psnr"]) == r["config"]["n_test"] == 2
        assert all(math.isfinite(p) for p in m["psnr"]), name
    for name in ("euler-R-g1.99", "rk4-R-g1.99"):  # residual: Lip <= 1 + gamma
        assert r["models"][name]["certified_lipschitz"] <= 1 + 1.99 + 1e-9
    # TV must beat the noisy input at sigma = 0.5
    assert r["models"]["tv"]["psnr_mean"] > r["noisy"]["psnr_mean"] + 5
    assert "euler-R-g1.99" in (tmp_path / "results.md").read_text()


def _check_pnp(r: dict, iterations: int, n_test: int) -> None:
    assert len(r["test_indices"]) == n_test
    avg = [n for n in r["test"] if "averaged" in n]
    assert avg, list(r["test"])
    for name in avg:
        run, best = r["test"][name], r["validation"][name]["best"]
        # the certificate reported is that of the relaxed denoiser actually used
        assert run["certified_averagedness"] == pytest.approx(0.995 * best["weight"])
        assert run["certified_lipschitz"] <= 1.0 + 1e-9
        res = run["relative_residuals"]
        assert len(res) == (iterations if name.startswith("PnP-PGD") else 4)
        assert len(run["psnr"]) == len(run["ssim"]) == n_test
        assert all(v is not None and math.isfinite(v) for v in res + run["psnr"])
        # Krasnosel'skii-Mann: for an averaged iteration map ||u_{k+1} - u_k|| never increases
        assert all(b <= a * (1 + 1e-4) + 1e-7 for a, b in zip(res, res[1:], strict=False)), res
        if name.startswith("PnP-ADMM"):  # only certified firmly nonexpansive relaxations
            assert best["weight"] * 0.995 <= 0.5
    for name, v in r["validation"].items():  # the chosen point is the best validation score
        scores = [row["score"] for row in v["table"] if row["score"] is not None]
        chosen = [row["score"] for row in v["table"]
                  if all(row[k] == b for k, b in v["best"].items())]
        assert chosen and chosen[0] == max(scores), name


def test_pnp_command_ct(tmp_path):
    assert _run("pnp", SMOKE, "--out", str(tmp_path)) == 0
    r = _outputs(tmp_path, ["convergence.png", "reconstructions.png"])
    assert r["dataset"] == "ct-head" and "fbp" in r["test"]
    assert set(r["test"]) == {"fbp", "TV", "PnP-PGD averaged", "PnP-PGD DnCNN",
                              "PnP-ADMM averaged", "PnP-ADMM DnCNN"}
    assert set(r["validation"]["PnP-PGD averaged"]["best"]) == {"sigma", "weight",
                                                                "step_factor"}
    _check_pnp(r, 5, 3)


def test_pnp_mri_with_trained_denoiser_run(tmp_path):
    """``spinv train configs/smoke-nonexpansive.yaml`` then ``pnp --denoiser RUN`` on MRI."""
    run = tmp_path / "run"
    assert main(["train", str(CONFIGS / "smoke-nonexpansive.yaml"), "--out", str(run),
                 "--max-steps", "3", "--no-progress"]) == 0
    cfg = tmp_path / "mri.yaml"
    cfg.write_text("pnp: {problem: mri, image_size: 16, rate: 0.3, iterations: 6, n_val: 1, "
                   "n_test: 2, include_dncnn: false, include_tv: false, weights: [0.5], "
                   "admm_iterations: 4, cg_iterations: 3, admm_rhos: [1.0], threads: 1}\n")
    out = tmp_path / "out"
    assert _run("pnp", str(cfg), "--out", str(out), "--denoiser", str(run)) == 0
    r = _outputs(out, ["convergence.png", "reconstructions.png"])
    assert r["dataset"] == "brain-t1" and "zero-filled" in r["test"]
    assert set(r["test"]) == {"zero-filled", "PnP-PGD averaged", "PnP-ADMM averaged"}
    assert r["denoisers"]["averaged (given)"]["source"] == str(run)
    _check_pnp(r, 6, 2)


def test_pnp_missing_denoiser_dir_is_an_error(tmp_path, capsys):
    assert _run("pnp", SMOKE, "--out", str(tmp_path / "o"), "--denoiser",
                str(tmp_path / "nope")) == 2
    assert "--denoiser" in capsys.readouterr().err


@pytest.mark.parametrize("text, needle", [
    ("denoise: {widht: 8}\n", "'denoise.widht': unknown key"),
    ("toy: {steps: 10}\nfoo: 1\n", "top-level key 'foo'"),
    ("denoise: {steps: -1}\n", "'denoise.steps'"),
    ("denoise: {gammas: [1.0, zero]}\n", "'denoise.gammas[1]'"),
    ("toy: {steps: 10}\n", "no 'denoise' section"),
    ("denoise: {sigma: -0.5}\n", "'denoise.sigma'"),
    ("denoise: {device: gpu0}\n", "'denoise.device'"),
])
def test_config_validation(tmp_path, capsys, text, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match="config"):
        DENOISE.load(cfg)
    assert _run("denoise", str(cfg), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and str(cfg) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "results.json").exists()


def test_shipped_configs_validate():
    for path in sorted(CONFIGS.glob("nonexpansive-*.yaml")):
        import yaml

        sections = [k for k in yaml.safe_load(path.read_text()) if k != "description"]
        assert sections, path
        for command in sections:
            cfg = find("nonexpansive", command).load(path)
            assert cfg.seed >= 0
    assert PNP.load({}).gamma < 2


def test_pnp_gamma_must_keep_averagedness():
    with pytest.raises(ValueError, match="pnp.gamma"):
        PNP.load({"pnp": {"gamma": 2.0}})
    with pytest.raises(ValueError, match="pnp.weights"):
        PNP.load({"pnp": {"weights": [0.5, 1.5]}})


def test_pnp_pgd_residual_nonincreasing_for_averaged_map():
    """Algorithm 6 with a firmly nonexpansive denoiser (soft shrinkage) on a random matrix."""
    from spinv.experiments.nonexpansive.pnp_convergence import pnp_pgd_with_metrics
    from spinv.operators.base import LinearOperator

    class Matrix(LinearOperator):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return (self.m @ x.reshape(-1)).reshape(1, 1, -1, 1)

        def adjoint(self, y):
            return (self.m.T @ y.reshape(-1)).reshape(1, 1, 8, 8)

    g = torch.Generator().manual_seed(0)
    op = Matrix(torch.randn(40, 64, generator=g))
    truth = torch.rand(1, 1, 8, 8, generator=g)
    y = op(truth)
    r = pnp_pgd_with_metrics(op, y, lambda u: torch.sign(u) * (u.abs() - 0.01).clamp(min=0),
                             truth, iterations=50)
    res = r["residuals"]
    assert all(b <= a * (1 + 1e-6) + 1e-9 for a, b in zip(res, res[1:], strict=False))
    assert res[-1] < res[0]
