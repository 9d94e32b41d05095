"""The chapter-3 trainings on the engine: pinned to the private loops they replaced (bit for
bit), run directories, and a denoising experiment killed mid-training (SIGKILL) that resumes to
the identical result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from spinv.experiments.nonexpansive.config import ToyConfig
from spinv.experiments.nonexpansive.denoiser_training import DenoiserTraining, train_denoiser
from spinv.experiments.nonexpansive.toy import PlainResNet, toy_absolute_value
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser, NonexpansiveResNet
from spinv.training.sources_images import random_crops

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs" / "nonexpansive-smoke.yaml")


def _former_train_denoiser(model, images, sigma, steps, batch_size, crop, lr, seed,
                           lr_schedule):
    """The loop of the denoisers' train_denoiser before the engine (verbatim)."""
    gen = torch.Generator().manual_seed(seed)
    cpu_images = images.detach().cpu()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
             if lr_schedule == "cosine" else None)
    enforce = getattr(model, "enforce_constraints", None)
    model.train()
    losses = []
    for _ in range(steps):
        clean = random_crops(cpu_images, batch_size, crop, gen)
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        loss = ((model(noisy) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if callable(enforce):
            enforce()
        losses.append(float(loss.detach()))
    model.eval()
    return float(np.mean(losses[-20:]))


def _images(n=4, size=24, seed=0):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("kind", ["dncnn", "averaged"])
def test_train_denoiser_equals_the_former_loop(kind, schedule, tmp_path):
    def build():
        if kind == "dncnn":
            return DnCNN(1, width=4, depth=4, batch_norm=True, seed=0)
        return NonexpansiveDenoiser.from_config(
            1, width=4, depth=2, method="heun", gamma=1.99, tied=True, alpha=0.5,
            power_size=(12, 12), seed=0)

    images, old, new = _images(), build(), build()
    final = _former_train_denoiser(old, images, 0.1, 7, 3, 12, 3e-3, 5, schedule)
    info = train_denoiser(new, images, DenoiserTraining(0.1, 7, 3, 12, 3e-3, 5, schedule),
                          run_dir=tmp_path / "run")
    assert _same_weights(old, new) and info["final_loss"] == final
    assert not new.training
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert ("cosine-torch" if schedule == "cosine" else "constant") in cfg


def test_denoiser_run_is_rebuilt_by_the_catalogue(tmp_path):
    from spinv.training.checkpoint import load_model

    net = NonexpansiveDenoiser.from_config(
        1, width=4, depth=2, method="rk4", gamma=1.5, power_size=(12, 12))
    train_denoiser(net, _images(), DenoiserTraining(0.1, 3, 2, 12), run_dir=tmp_path / "r")
    back, cfg = load_model(tmp_path / "r")
    assert cfg.model.name == "nonexpansive-denoiser" and cfg.problem.kind == "denoise"
    assert _same_weights(back, net)
    problem = json.loads((tmp_path / "r" / "problem.json").read_text())
    assert problem["kind"] == "denoise" and problem["noise"]["sigma"] == 0.1
    y = _images(1, 12, seed=3)
    assert torch.equal(back(y), net(y))


def test_zero_steps_train_nothing(tmp_path):
    net = DnCNN(1, width=4, depth=3, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    info = train_denoiser(net, _images(), DenoiserTraining(0.1, 0), run_dir=tmp_path / "r")
    assert info == {"train_seconds": 0.0, "final_loss": None, "steps": 0}
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="lr_schedule"):
        DenoiserTraining(0.1, 3, lr_schedule="step")


def _former_toy(n_points, steps, lr, seed, depth, hidden, step):
    """The toy |x| loops before the engine (verbatim): the two fitted curves on a grid."""
    gen = torch.Generator().manual_seed(seed)
    xs = torch.rand(n_points, 1, generator=gen) * 2 - 1
    ys = xs.abs()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        xi = NonexpansiveResNet(1, depth=depth, hidden=hidden, method="euler", step=step,
                                kernel_size=1)
        plain = PlainResNet(depth, hidden)
    xi.enforce_constraints()

    def xi_fn(x):
        return xi(x.view(-1, 1, 1, 1)).view(-1, 1)

    for model, fn in ((xi, xi_fn), (plain, plain)):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            loss = ((fn(xs) - ys) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if model is xi:
                xi.enforce_constraints()
    grid = torch.linspace(-2, 2, 801).view(-1, 1)
    with torch.no_grad():
        return xi_fn(grid).view(-1).tolist(), plain(grid).view(-1).tolist()


def test_toy_fit_equals_the_former_loops_and_leaves_runs(tmp_path):
    f_xi, f_plain = _former_toy(6, 25, 1e-2, 2, 4, 5, 2.0)
    config = ToyConfig(n_points=6, steps=25, lr=1e-2, seed=2, depth=4, hidden=5)
    r = toy_absolute_value(config, runs_dir=tmp_path)
    assert r["nonexpansive"] == f_xi and r["unconstrained"] == f_plain
    from spinv.training.checkpoint import read_checkpoint
    from spinv.training.models import build_builtin

    ck = read_checkpoint(tmp_path / "nonexpansive")
    spec = dict(ck.metadata["config"]["model"])
    xi = build_builtin(spec.pop("name"), spec, None)
    xi.load_state_dict(ck.model_state)
    grid = torch.linspace(-2, 2, 801).view(-1, 1, 1, 1)
    with torch.no_grad():
        assert xi(grid).view(-1).tolist() == f_xi
    assert (tmp_path / "unconstrained" / "log.jsonl").read_text().count("\n") == 25


KILLED_DENOISE = textwrap.dedent("""
    import os, signal, sys
    import spinv.experiments.nonexpansive.denoiser_training as dt
    from spinv.experiments.nonexpansive import DENOISE
    from spinv.experiments.nonexpansive.denoise import run_denoise
    from spinv.training.sources_images import NoisyCrops

    dt.CHECKPOINT_EVERY = 4
    calls = {"n": 0}
    draw = NoisyCrops.batch

    def batch(self, step):  # SIGKILL in the middle of the second network's training
        calls["n"] += 1
        if calls["n"] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        return draw(self, step)

    NoisyCrops.batch = batch
    run_denoise(DENOISE.load(sys.argv[1], None, ["steps=10"]), sys.argv[2])
""")

TIMING = {"train_seconds", "eval_seconds", "init_seconds", "machine"}


def _numbers(d):
    if isinstance(d, dict):
        return {k: _numbers(v) for k, v in d.items() if k not in TIMING}
    if isinstance(d, list):
        return [_numbers(v) for v in d]
    return d


def test_killed_denoising_experiment_resumes_to_the_identical_result(tmp_path, monkeypatch):
    import spinv.experiments.nonexpansive.denoiser_training as dt
    from spinv.experiments.nonexpansive import DENOISE
    from spinv.experiments.nonexpansive.denoise import run_denoise

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED_DENOISE, SMOKE, str(killed), "15"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    second = killed / "runs" / "euler-R-g1.99"
    assert json.loads((second / "latest.json").read_text())["step"] == 4  # killed at step 5
    assert not (second / "summary.json").is_file()

    monkeypatch.setattr(dt, "CHECKPOINT_EVERY", 4)
    cfg = DENOISE.load(SMOKE, None, ["steps=10"])
    run_denoise(cfg, killed)  # resume: the first net reloaded, the second
    run_denoise(cfg, tmp_path / "whole")  # continued from step 4
    resumed = json.loads((killed / "results.json").read_text())
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert _numbers(resumed) == _numbers(whole)
    log = [json.loads(line) for line in (second / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))
    assert json.loads((second / "summary.json").read_text())["sessions"] == 2
