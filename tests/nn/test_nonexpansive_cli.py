"""``spinv lipschitz``: certified bound vs. adversarial estimates on a saved checkpoint."""

from __future__ import annotations

import json

import torch

from spinv.cli import main
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser
from spinv.training.checkpoint import save_checkpoint


def _save(tmp_path, model, name, full=True):
    model_cfg = {"name": name, **model.config}
    cfg = {"problem": {"kind": "denoise", "image_size": 16}, "model": model_cfg}
    save_checkpoint(tmp_path / "run", model, None, 3, cfg if full else {"model": model_cfg})
    return tmp_path / "run"


def test_lipschitz_command_reports_certified_bound(tmp_path, capsys):
    net = NonexpansiveDenoiser(1, width=4, depth=2, method="rk4", gamma=1.99, residual=False,
                               seed=0)
    with torch.no_grad():  # perturb, then project, so the weights are not the seed's
        for p in net.parameters():
            p.add_(0.3)
    net.enforce_constraints()
    run = _save(tmp_path, net, "nonexpansive-denoiser")
    rc = main(["lipschitz", str(run), "--size", "12", "--starts", "2", "--steps", "5",
               "--out", str(tmp_path / "out")])
    assert rc == 0
    report = json.loads((tmp_path / "out" / "lipschitz.json").read_text())
    assert report["certified"] == net.certified_lipschitz()
    assert 0 < report["empirical"] <= report["certified"] and report["holds"] is True
    assert "certified Lipschitz bound" in capsys.readouterr().out


def test_lipschitz_command_model_only_config_and_dncnn(tmp_path):
    net = DnCNN(1, width=4, depth=3, zero_last=False, seed=0).eval()
    run = _save(tmp_path, net, "dncnn", full=False)
    rc = main(["lipschitz", str(run), "--size", "8", "--starts", "1", "--steps", "3",
               "--out", str(tmp_path / "o")])
    report = json.loads((tmp_path / "o" / "lipschitz.json").read_text())
    assert rc == 0 and report["certificate_source"] == "lipschitz_upper_bound"
    assert report["empirical"] <= report["certified"]


def test_lipschitz_command_errors(tmp_path, capsys):
    assert main(["lipschitz", str(tmp_path / "missing")]) == 2
    net = NonexpansiveDenoiser(1, width=2, depth=1, seed=0)
    run = _save(tmp_path, net, "nonexpansive-denoiser")
    assert main(["lipschitz", str(run), "--size", "0"]) == 2
    assert "--size" in capsys.readouterr().err
