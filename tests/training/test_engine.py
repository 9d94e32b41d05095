"""The training engine: pinned to the private Adam loop it replaced, resume, hooks, objectives,
trainable subsets, schedules, non-finite losses."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from spinv.training.checkpoint import load_checkpoint
from spinv.training.engine import FitOptions, NonFiniteLossError, fit
from spinv.training.objectives import MeanSquaredError
from spinv.training.rundir import open_run
from spinv.training.schedules import cosine_torch_lr, learning_rate
from spinv.training.sources import FixedPairs


def _pairs(n=6, complex_y=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = x + 0.1 * torch.randn(n, 1, 8, 8, generator=g)
    return x, (y.to(torch.complex64) if complex_y else y)


class Net(nn.Module):
    def __init__(self, seed=1):
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, y):
        if y.is_complex():
            y = y.real
        return y + self.b(torch.relu(self.a(y)))


def _old_private_loop(model, x, y, steps, lr, batch, clip, seed):
    """The loop of experiments/equivariance.py before the engine (train_lpg, float32)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    order = torch.Generator().manual_seed(seed + 4)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=order)
        opt.zero_grad(set_to_none=True)
        rec = model(y[idx])
        err = (rec.to(torch.complex64) if rec.is_complex() else rec.float()) - x[idx]
        loss = err.abs().square().mean()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return losses


def test_fixed_pairs_fit_is_bit_identical_to_the_old_private_loop():
    x, y = _pairs()
    old, new = Net(), Net()
    old_losses = _old_private_loop(old, x, y, steps=12, lr=1e-2, batch=2, clip=0.5, seed=3)
    res = fit(new, FixedPairs(x, y, 2, 3 + 4), FitOptions(steps=12, lr=1e-2, grad_clip=0.5),
              objective=MeanSquaredError(modulus=True))
    assert res.losses == old_losses
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(),
                                                 new.state_dict().values(), strict=True))


def test_interrupted_fixed_pairs_run_resumes_bit_identically(tmp_path):
    x, y = _pairs(complex_y=True)
    cfg = {"model": {"name": "net"}, "train": {"steps": 9}}
    opts = FitOptions(steps=9, lr=5e-3, schedule="cosine", lr_min=1e-4, checkpoint_every=2)

    def run(path, stop=None, resume=False):
        model = Net()
        source = FixedPairs(x, y, 3, seed=11)
        with open_run(path, cfg, resume=resume) as rd:
            o = FitOptions(**{**opts.__dict__, "stop_at": stop})
            return model, fit(model, source, o, run=rd)

    _, full = run(tmp_path / "full")
    run(tmp_path / "part", stop=5)  # "killed" after step 5 (checkpoint at 4 and 5)
    assert load_checkpoint(tmp_path / "part")[1]["step"] == 5
    _, resumed = run(tmp_path / "part", resume=True)
    a, _ = load_checkpoint(tmp_path / "full")
    b, mb = load_checkpoint(tmp_path / "part")
    assert mb["step"] == 9 and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses == full.losses and len(full.losses) == 9
    # the data generator's state travels in the checkpoint
    from spinv.training.checkpoint import read_checkpoint

    assert "data/generator" in read_checkpoint(tmp_path / "part").state


def test_custom_objective_scalars_hooks_and_trainable_subset(tmp_path):
    x, y = _pairs()
    model = Net()
    frozen_before = model.a.weight.detach().clone()
    calls = []

    def objective(m, batch):
        xb, yb = batch
        err = (m(yb) - xb).square()
        return err.mean(), {"max_err": err.max(), "half": 0.5}

    with open_run(tmp_path / "r", {"name": "custom"}) as rd:
        res = fit(model, FixedPairs(x, y, 2, 0), FitOptions(steps=4, trainable=("b.",)),
                  objective=objective, hooks=[lambda m, k: calls.append(k)], run=rd)
    assert calls == [1, 2, 3, 4] and res.step == 4
    assert torch.equal(model.a.weight, frozen_before)  # not in the trainable subset
    assert model.a.weight.requires_grad  # restored after training
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["half"] for r in log] == [0.5] * 4 and all("max_err" in r for r in log)
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert prov["precision"] == "float32" and prov["data"]["n"] == 6
    assert prov["cpu_seconds_total"] >= 0 and "commit" in prov
    with pytest.raises(ValueError, match="selects no parameter"):
        fit(Net(), FixedPairs(x, y, 2, 0), FitOptions(steps=1, trainable=("zzz",)))


def test_enforce_constraints_runs_after_every_step():
    x, y = _pairs()

    class Clipped(Net):
        def enforce_constraints(self):
            self.b.weight.clamp_(-0.01, 0.01)

    model = Clipped()
    fit(model, FixedPairs(x, y, 2, 0), FitOptions(steps=3, lr=0.5))
    assert float(model.b.weight.detach().abs().max()) <= 0.01


def test_bf16_option_runs_under_autocast_and_is_recorded(tmp_path):
    x, y = _pairs()
    seen = []

    def objective(m, batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return MeanSquaredError()(m, batch)

    with open_run(tmp_path / "r", {}) as rd:
        fit(Net(), FixedPairs(x, y, 2, 0), FitOptions(steps=2, precision="bf16"),
            objective=objective, run=rd)
    assert seen == [True, True]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["precision"] == "bf16"
    fit(Net(), FixedPairs(x, y, 2, 0), FitOptions(steps=1), objective=objective)
    assert seen[-1] is False


def test_non_finite_loss_stops_with_one_error_keeping_the_last_checkpoint(tmp_path):
    x, y = _pairs()

    def objective(m, batch):
        loss, _ = MeanSquaredError()(m, batch)
        return (loss * float("nan") if objective.calls >= 3 else loss), {}

    objective.calls = 0

    def count(m, k):
        objective.calls = k

    with open_run(tmp_path / "r", {}) as rd, pytest.raises(NonFiniteLossError, match="step 4"):
        fit(Net(), FixedPairs(x, y, 2, 0), FitOptions(steps=6, checkpoint_every=1),
            objective=objective, hooks=[count], run=rd)
    assert load_checkpoint(tmp_path / "r")[1]["step"] == 3
    assert issubclass(NonFiniteLossError, ValueError)  # the CLI prints one error line


def test_schedules_cosine_floor_and_torch_recursion():
    k = 10
    closed = [learning_rate(1.0, "cosine", i, k, lr_min=0.1) for i in range(k + 1)]
    assert closed[0] == 1.0 and closed[-1] == pytest.approx(0.1, abs=1e-15)
    assert all(a >= b for a, b in zip(closed, closed[1:], strict=False))
    # cosine-torch reproduces torch.optim.lr_scheduler.CosineAnnealingLR bit for bit
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 37, 5e-5)
    torch_lrs = []
    for _ in range(45):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [cosine_torch_lr(1e-3, i, 37, 5e-5) for i in range(45)] == torch_lrs
    # ... and differs from the closed form only in the last bits
    for i in range(37):
        assert math.isclose(learning_rate(1e-3, "cosine", i, 37, 5e-5), torch_lrs[i],
                            rel_tol=1e-13)
    # with no floor the closed form keeps the historical expression (bit-identical resumes)
    assert learning_rate(1e-3, "cosine", 3, 7) == 1e-3 * 0.5 * (1.0 + math.cos(math.pi * 3 / 7))


def test_fit_options_reject_bad_values():
    for bad, match in (({"steps": 0}, "steps"), ({"steps": 1, "lr": float("nan")}, "lr"),
                       ({"steps": 1, "schedule": "linear"}, "schedule"),
                       ({"steps": 1, "precision": "fp16"}, "precision"),
                       ({"steps": 1, "lr": 1e-3, "lr_min": 1.0}, "lr_min")):
        with pytest.raises(ValueError, match=match):
            FitOptions(**bad)


def test_fixed_pairs_fast_forward_and_order():
    x, y = _pairs()
    a, b = FixedPairs(x, y, 2, 5), FixedPairs(x, y, 2, 5)
    for k in range(4):
        a.batch(k)
    assert torch.equal(a.batch(4)[0], b.batch(4)[0])  # b skipped steps 0-3
    with pytest.raises(ValueError, match="in order"):
        a.batch(1)
