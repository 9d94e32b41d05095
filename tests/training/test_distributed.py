"""DDP: ``torchrun --nproc_per_node 2`` (gloo on CPU) equals one process on the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from spinv.training.checkpoint import load_checkpoint
from spinv.training.config import parse_config
from spinv.training.distributed import DistInfo, shard
from spinv.training.loop import train

from .conftest import tiny_dict


def test_two_process_ddp_matches_single_process(tmp_path):
    d = tiny_dict(train={"steps": 6, "batch_size": 4, "checkpoint_every": 6})
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    if os.path.exists("/sys/class/net/lo"):  # keep gloo on loopback (no hostname lookup)
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc_per_node", "2", "-m", "spinv.cli", "train", str(cfg_path),
           "--out", str(tmp_path / "ddp")]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("step 6/6") == 1  # only rank 0 reports
    train(parse_config(d), tmp_path / "single")
    a, ma = load_checkpoint(tmp_path / "single")
    b, mb = load_checkpoint(tmp_path / "ddp")
    assert ma["step"] == mb["step"] == 6
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6)
    # the comparison is not vacuous: training moved the weights far more than the tolerance
    from spinv.training.data import make_operator
    from spinv.training.registry import build_model

    cfg = parse_config(d)
    torch.manual_seed(cfg.train.seed)
    init = build_model(cfg.model.name, cfg.model.options, make_operator(cfg.problem))
    moved = max(float((init.state_dict()[k] - a[k]).abs().max()) for k in a)
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 100 * max(gap, 1e-6)


def test_shard_and_info():
    assert [shard(6, r, 3) for r in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    assert DistInfo().is_main and not DistInfo().enabled
    assert DistInfo(rank=1, world_size=2).enabled
