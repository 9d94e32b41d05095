"""Tests of the thesis §2.5 equivariance experiments and the ``spinv equivariance`` commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from spinv.cli import main
from spinv.experiments.equivariance import DEPTH, SWEEP_N
from spinv.experiments.equivariance.depth import lpg_iterates
from spinv.experiments.equivariance.sweeps import capped_sizes
from spinv.experiments.protocol import find

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "equivariance-smoke.yaml"


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def _run(args: list[str]) -> int:
    return main(["equivariance", *args, "--quiet"])


def test_sweep_n_smoke_end_to_end(tmp_path):
    assert _run(["sweep-n", str(SMOKE), "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["experiment"] == "sweep-n"
    assert set(payload) >= {"settings", "notes", "results", "n_train_values"}
    assert list(payload["results"]) == ["N=2", "N=3"]
    for row in payload["results"].values():
        assert list(row) == ["ordinary", "C4"]
        for entry in row.values():
            for split in ("upright", "rotated"):
                m = entry[split]
                assert len(m["psnr_roi"]) == payload["settings"]["n_test"] == 2
                assert _finite(m["psnr_roi"] + m["ssim_roi"] + m["psnr"] + m["ssim"])
                assert all(-1 <= s <= 1 for s in m["ssim_roi"])
            assert len(entry["losses"]) == 3 and _finite(entry["losses"])
    # the equivariant model has fewer free parameters at the same width
    n = payload["results"]["N=2"]
    assert n["C4"]["parameters"] < n["ordinary"]["parameters"]
    assert "| N=3 C4 | rotated |" in (tmp_path / "results.md").read_text()
    # classical baselines on the same held-out sets, TV's alpha from the tuning grid's range
    base = payload["baselines"]
    assert base["analytic"]["name"] == "FBP" and 1e-3 <= base["alpha"] <= 1e-1
    for key in ("analytic", "TV"):
        for split in ("upright", "rotated"):
            assert len(base[key][split]["psnr_roi"]) == 2 and _finite(base[key][split]["psnr"])
    assert "| FBP | upright |" in (tmp_path / "results.md").read_text()
    for split in ("upright", "rotated"):
        for key in ("psnr_roi", "ssim_roi"):
            png = tmp_path / f"violin_{split}_{key}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"examples_{split}.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_groups_smoke_end_to_end(tmp_path):
    assert _run(["groups", str(SMOKE), "--out", str(tmp_path), "--seed", "1"]) == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["experiment"] == "groups"
    assert payload["settings"]["eval_split"] == "val" and payload["settings"]["seed"] == 1
    assert list(payload["results"]) == ["m=1", "m=4"]
    assert [e["group"] for e in payload["results"].values()] == ["C1", "C4"]
    for e in payload["results"].values():
        assert _finite(e["upright"]["psnr_roi"] + e["rotated"]["ssim_roi"])
    assert (tmp_path / "violin_upright_psnr_roi.png").is_file()


def test_depth_smoke_honours_iteration_counts(tmp_path):
    assert _run(["depth", str(SMOKE), "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    cfg = DEPTH.load(SMOKE, "small")
    learned = payload["results"]["learned"]
    assert set(learned) == {"ordinary", "C4"}
    for e in learned.values():
        assert len(e["mean_psnr_roi"]) == cfg.total_iterations == 5
        assert len(e["psnr_roi"][0]) == cfg.n_show
        assert _finite(e["mean_psnr_roi"])
        assert e["at_depth"] == e["mean_psnr_roi"][cfg.iterations - 1]
    pdhg = payload["results"]["pdhg"]["mean_psnr_roi"]
    assert len(pdhg) == cfg.pdhg_iterations == 4 and _finite(pdhg)
    assert payload["alpha"] in payload["alpha_search"]["alphas"]
    assert (tmp_path / "psnr_vs_iteration.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_n_mri_smoke(tmp_path):
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["small"].update(problem="mri", n_train_values=[2], groups=["C4"])
    path = tmp_path / "mri.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert _run(["sweep-n", str(path), "--out", str(tmp_path / "out")]) == 0
    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    assert payload["settings"]["dataset"] == "brain-t1"
    e = payload["results"]["N=2"]["C4"]
    assert _finite(e["losses"] + e["rotated"]["psnr_roi"] + e["upright"]["ssim_roi"])


@pytest.mark.parametrize(
    "section, message",
    [
        ({"widht": 8}, "'small.widht'"),
        ({"steps": 0}, "'small.steps'"),
        ({"steps": 2.5}, "'small.steps'"),
        ({"groups": ["C0"]}, r"'small.groups\[0\]'"),
        ({"problem": "pet"}, "'small.problem'"),
        ({"reuse": "wrap"}, "'small.reuse'"),
        ({"bf16": "yes"}, "'small.bf16'"),
        ({"problem": "mri", "rate": 1.5}, "'small.rate'"),
        ({"alpha_grid": []}, "'small.alpha_grid'"),
        ({"scale": "paper"}, "'small.scale'"),
    ],
)
def test_config_validation_names_the_key(section, message):
    with pytest.raises(ValueError, match=message) as err:
        SWEEP_N.load({"small": section}, "small")
    assert len(str(err.value).splitlines()) == 1


def test_config_structure_errors(tmp_path):
    with pytest.raises(ValueError, match="'paper'"):
        DEPTH.load({"small": {}}, "paper")
    with pytest.raises(ValueError, match="'sweep-n'"):
        DEPTH.load({"command": "sweep-n", "small": {}}, "small")
    with pytest.raises(ValueError, match="'smal'"):
        DEPTH.load({"smal": {}, "paper": {}}, "small")
    with pytest.raises(ValueError, match="'smal'"):  # no scale section: a flat config
        DEPTH.load({"smal": {}})
    with pytest.raises(ValueError, match="no scale sections"):
        DEPTH.load({"steps": 2}, "paper")
    assert DEPTH.load({"steps": 2}).steps == 2 and DEPTH.load({"steps": 2}).scale is None
    with pytest.raises(FileNotFoundError):
        DEPTH.load(tmp_path / "missing.yaml", "small")


def test_cli_reports_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("small:\n  image_size: 16\n  learning_rate: 0.1\n")
    assert _run(["sweep-n", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "'small.learning_rate'" in err[0]
    assert not (tmp_path / "o" / "results.json").exists()


def test_every_shipped_config_validates():
    names = [f"equivariance-{c}-{p}.yaml" for c in ("sweep-n", "groups", "depth")
             for p in ("ct", "mri")]
    files = [ROOT / "configs" / n for n in ["equivariance-smoke.yaml", *names]]
    for f in files:
        data = yaml.safe_load(f.read_text())
        commands = [data["command"]] if "command" in data else ["sweep-n", "groups", "depth"]
        for command in commands:
            experiment = find("equivariance", command)
            for scale in ("small", "paper"):
                cfg = experiment.load(f, scale)
                assert cfg.scale == scale
        if "paper" in data and "command" in data:
            paper = find("equivariance", data["command"]).load(f, "paper")
            assert paper.width == 96 and paper.iterations == 8
            assert paper.image_size == (512 if paper.problem == "ct" else 320)


def test_training_set_size_capped_at_available_slices():
    notes: list[str] = []
    cfg = SWEEP_N.load({"small": {"problem": "ct"}})
    assert capped_sizes(cfg, [10, 50, 100, 200], notes) == [10, 50, 60]
    assert len(notes) == 2 and "60 training slices" in notes[0]
    cfg = SWEEP_N.load({"small": {"problem": "mri"}})
    assert capped_sizes(cfg, [100], []) == [84]


@pytest.mark.parametrize("reuse", ["cycle", "last"])
def test_past_depth_iterates(reuse):
    from spinv.learned import LearnedProximalGradient
    from spinv.operators import Identity

    torch.manual_seed(0)
    model = LearnedProximalGradient(Identity(), group="C4", width=8, iterations=3, memory=2,
                                    seed=0)
    y = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    us = list(lpg_iterates(model, y, 10, reuse=reuse))
    assert len(us) == 10
    with torch.no_grad():
        ref = model(y)
    assert torch.allclose(us[2], ref, atol=1e-6)  # the trained depth reproduces model(y)
    assert not torch.allclose(us[1], ref, atol=1e-4)
    # Identity + C4: every iterate is exactly rotation equivariant
    rot = list(lpg_iterates(model, torch.rot90(y, 1, (2, 3)), 10, reuse=reuse))
    assert torch.allclose(rot[-1], torch.rot90(us[-1], 1, (2, 3)), atol=1e-5)
    # u_k for k > depth equals the output of an unrolled model of depth k whose blocks are the
    # trained ones in the order of the reuse rule (cycle: 0,1,2,0,1,2,...; last: 0,1,2,2,2,...)
    b = list(model.blocks)
    order = (b * 3)[:7] if reuse == "cycle" else b + [b[2]] * 4
    long = LearnedProximalGradient(Identity(), group="C4", width=8, iterations=7, memory=2,
                                   step_size=float(model.step_size))
    long.blocks = torch.nn.ModuleList(order)
    with torch.no_grad():
        assert torch.allclose(long(y), us[6], atol=1e-5)
    other = list(lpg_iterates(model, y, 7, reuse="last" if reuse == "cycle" else "cycle"))
    assert torch.allclose(other[2], us[2]) and not torch.allclose(other[6], us[6], atol=1e-4)


def test_past_depth_rejects_bad_counts():
    from spinv.learned import LearnedProximalGradient
    from spinv.operators import Identity

    model = LearnedProximalGradient(Identity(), width=4, iterations=2, seed=0)
    y = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="total=0"):
        next(lpg_iterates(model, y, 0))
    with pytest.raises(ValueError, match="reuse='again'"):
        next(lpg_iterates(model, y, 3, reuse="again"))
