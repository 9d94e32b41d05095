"""The VAE stages and the end-to-end baseline on the training engine: pinned bit for bit to the
private loops they replaced (with gradient clipping active), run directories that load_vae,
the catalogue and `spinv evaluate` read, and a generative experiment killed mid-training
(SIGKILL) that resumes to the identical result."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spinv.generative.train import SliceSampler, TrainSettings, elbo_terms
from spinv.nn.vae import GaussianVAE
from spinv.training.rundir import open_run
from spinv.training.vae import load_vae, train_vae, vae_run_config

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "generative-smoke.yaml"


def _former_train_vae(model, sampler, settings, log_every=50):
    """The loop of spinv.generative.train.train_vae before the engine (verbatim, less the
    progress bar); also returns the gradient norms before clipping."""
    if settings.stage == "mean":
        params = (list(model.encoder.parameters()) + list(model.decoder.parameters())
                  + [model.log_gamma])
    elif settings.stage == "covariance":
        params = list(model.cov_head.parameters())
    else:
        params = list(model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.Adam(params, lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.steps, settings.lr * 0.05)
    history, acc, norms = [], {}, []
    model.train()
    for step in range(1, settings.steps + 1):
        x = sampler.sample(settings.batch_size, gen)
        terms = elbo_terms(model, x, gen, settings.stage, settings.beta)
        opt.zero_grad()
        terms["loss"].backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, 100.0)))
        opt.step()
        sched.step()
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach())
        if step % log_every == 0 or step == settings.steps:
            cnt = log_every if step % log_every == 0 else step % log_every
            history.append({"step": step, **{k: v / cnt for k, v in acc.items()}})
            acc = {}
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return history, norms


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def sampler():
    from spinv.data import load_dataset

    return SliceSampler(load_dataset("brain-t1", "train"), 16, zoom=(0.8, 1.25))


def test_train_vae_stages_equal_the_former_loop(sampler, tmp_path):
    torch.manual_seed(0)
    old = GaussianVAE(image_size=16, latent_dim=4, width=4, covariance="lowrank", rank=2)
    new = copy.deepcopy(old)
    clipped = False
    for stage, steps in (("mean", 12), ("covariance", 6), ("joint", 3)):
        settings = TrainSettings(stage, steps, 8, 1e-3, 1.0, seed=len(stage))
        h_old, norms = _former_train_vae(old, sampler, settings, log_every=5)
        clipped |= max(norms) > 100.0
        with open_run(tmp_path / stage, vae_run_config(new, settings)) as run:
            h_new = train_vae(new, sampler, settings, progress=False, log_every=5, run=run)
        assert _same_weights(old, new), stage
        assert h_new == h_old, stage
    assert clipped  # the clipping sums the gradient norms in the former parameter order
    back = load_vae(tmp_path / "joint")
    assert _same_weights(back, new) and not back.training


def test_vae_run_is_rebuilt_by_the_catalogue(sampler, tmp_path):
    from spinv.training.checkpoint import read_checkpoint
    from spinv.training.models import build_builtin

    torch.manual_seed(1)
    vae = GaussianVAE(image_size=16, latent_dim=3, width=4, covariance="diagonal")
    settings = TrainSettings("mean", 3, 4)
    with open_run(tmp_path / "r", vae_run_config(vae, settings)) as run:
        train_vae(vae, sampler, settings, progress=False, run=run)
    ck = read_checkpoint(tmp_path / "r")
    spec = dict(ck.metadata["config"]["model"])
    back = build_builtin(spec.pop("name"), spec, None)
    back.load_state_dict(ck.model_state)
    assert _same_weights(back, vae)
    records = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text()
               .splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and {"nll", "kl"} <= set(records[0])


def _former_end_to_end(cfg, train_images, device):
    """The loop of the generative experiment's train_end_to_end before the engine (verbatim,
    the operator built as make_problem did)."""
    from spinv.learned.postprocess import PostProcessCNN
    from spinv.operators import SubsampledFourier
    from spinv.operators.sampling import make_mask

    e, d, pc = cfg["end_to_end"], cfg["data"], cfg["problem"]
    ts = pc["train_setting"]
    size = int(d["image_size"])
    operator = SubsampledFourier(make_mask(pc["pattern"], (size, size), float(ts["rate"]),
                                           seed=pc["mask_seed"]))
    noise = float(ts["noise"])
    torch.manual_seed(cfg["seed"] + 17)
    net = PostProcessCNN(operator, channels=1, width=int(e["width"]), depth=int(e["depth"]),
                         init="adjoint").to(device)
    sampler = SliceSampler(train_images, size, zoom=d["zoom"], flip=d["flip"]).to(device)
    gen = torch.Generator().manual_seed(cfg["seed"] + 18)
    opt = torch.optim.Adam(net.net.parameters(), lr=float(e["lr"]))
    steps = int(e["steps"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, float(e["lr"]) * 0.05)
    for _ in range(steps):
        x = sampler.sample(int(e["batch_size"]), gen)
        y = operator.measure(x, sigma=noise, generator=gen)
        loss = (net(y).real - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def test_end_to_end_equals_the_former_loop_and_is_evaluable(tmp_path):
    from spinv.cli import main
    from spinv.data import load_dataset
    from spinv.experiments.generative import COMPARISON
    from spinv.experiments.generative.end_to_end import train_end_to_end

    cfg = COMPARISON.load(SMOKE, None, ["end_to_end.steps=6"])
    images = load_dataset("brain-t1", "train")
    old = _former_end_to_end(cfg.to_dict(), images, "cpu")
    steps = []
    new = train_end_to_end(cfg, images, "cpu", lambda k, n, rec: steps.append((k, n, rec["stage"])),
                           run_dir=tmp_path / "e2e")
    assert steps == [(k, 6, "end-to-end") for k in range(1, 7)]
    assert _same_weights(old, new)
    code = main(["evaluate", str(tmp_path / "e2e"), "--out", str(tmp_path / "ev"),
                 "--n-images", "2"])
    assert code == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["model"] == "postprocess-cnn" and metrics["problem"] == "mri"


KILLED_EXPERIMENT = textwrap.dedent("""
    import os, signal, sys
    import spinv.training.vae as vae
    from spinv.experiments.generative import COMPARISON
    from spinv.experiments.generative.experiment import run_experiment
    from spinv.training.objectives_generative import NegativeELBO

    vae.CHECKPOINT_EVERY = 4
    calls = {"n": 0}
    loss = NegativeELBO.__call__

    def call(self, model, x):  # SIGKILL in the middle of the 'diagonal' head's training
        calls["n"] += 1
        if calls["n"] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        return loss(self, model, x)

    NegativeELBO.__call__ = call
    run_experiment(COMPARISON.load(sys.argv[1]), sys.argv[2])
""")

TIMING = {"seconds", "seconds_training_vae", "seconds_training_end_to_end"}


def test_killed_generative_experiment_resumes_to_the_identical_result(tmp_path, monkeypatch):
    import spinv.training.vae as vae
    from spinv.experiments.generative import COMPARISON
    from spinv.experiments.generative.experiment import run_experiment

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED_EXPERIMENT, str(SMOKE), str(killed),
                           "27"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    diagonal = killed / "models" / "vae-diagonal"
    assert json.loads((diagonal / "latest.json").read_text())["step"] == 4  # killed at step 7
    assert not (killed / "results.json").is_file()

    monkeypatch.setattr(vae, "CHECKPOINT_EVERY", 4)
    config = COMPARISON.load(SMOKE)
    resumed = run_experiment(config, killed)
    whole = run_experiment(config, tmp_path / "whole")
    for summary in (resumed, whole):
        for key in TIMING:
            summary["meta"].pop(key)
    assert resumed == whole
    assert json.loads((diagonal / "summary.json").read_text())["sessions"] == 2
    assert json.loads((killed / "results.json").read_text())["table"] == whole["table"]


def test_trainable_subset_lists_parameters_in_prefix_order():
    from spinv.training.engine import trainable_parameters
    from spinv.training.vae import STAGE_PARAMETERS

    vae = GaussianVAE(image_size=16, latent_dim=3, width=4, covariance="diagonal")
    chosen = trainable_parameters(vae, STAGE_PARAMETERS["mean"])
    former = [*vae.encoder.parameters(), *vae.decoder.parameters(), vae.log_gamma]
    assert [id(p) for p in chosen] == [id(p) for p in former]
    assert next(iter(dict(vae.named_parameters()))) == "log_gamma"  # not the named order
    assert [id(p) for p in trainable_parameters(vae, ("cov_head.",))] == [
        id(p) for p in vae.cov_head.parameters()]
