"""Benchmark of the nonexpansive ODE denoisers (thesis ch. 3) against DnCNN.

At equal width and depth (default: width 32, depth 10, 1 -> width -> 1 channels, crops 32^2,
batch 5, float32, one thread) measures for Euler, Heun and RK4 denoisers and a DnCNN:

* construction / initialisation (He init + certified projection of every convolution; the thesis
  used 1000 power iterations per operator at initialisation, about 110 s on its GPU node);
* train step: forward + backward + Adam step (loss ||Phi(y) - x||^2), seconds;
* ``enforce_constraints()``: one warm-started power iteration per convolution plus the certified
  bound (per-frequency SVDs on a 16^2 DFT grid) and rescaling, seconds;
* the certified Lipschitz bound and the ratio certified / power-iteration norm per layer;
* ``euler-power``: the same Euler network with the thesis' rule (rescale by the one-step power
  estimate only, no certificate), to price the certification.

``--bf16`` adds a ``<model>+bf16`` copy of every model whose forward and backward run under
bfloat16 autocast (the weights, ``enforce_constraints()`` and the certificates stay in
float32/float64), timed round-robin with the float32 models, to price it.

Models are timed round-robin (one repetition of each in turn); median and minimum are reported
(the minimum is the least contaminated by other processes on a shared machine).

Usage: python benchmarks/nonexpansive.py [--width 32] [--depth 10] [--repeats 5] [--bf16]
Writes benchmarks/results/nonexpansive.json (``--bf16``: nonexpansive_bf16.json) and prints a
table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _machine import machine_info as _machine_info

from spinv.atomic import atomic_write_json
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import NonexpansiveDenoiser
from spinv.nn.spectral import conv_norm_upper_bound, conv_power_norm

RESULTS = Path(__file__).resolve().parent / "results" / "nonexpansive.json"


def machine_info() -> dict:
    return _machine_info(dtype="float32 (certificates in float64)")


def build(kind: str, width: int, depth: int, crop: int):
    if kind == "dncnn":
        return DnCNN(1, width=width, depth=depth, zero_last=False, seed=0)
    method, _, control = kind.partition("-")
    return NonexpansiveDenoiser.from_config(1, width=width, depth=depth, method=method, gamma=1.99,
                                            residual=True, power_size=(crop, crop), seed=0,
                                            norm_control=control or "certified")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bf16", action="store_true",
                   help="also time every model with bfloat16 autocast in the train step")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.out is None:
        a.out = str(RESULTS.with_name("nonexpansive_bf16.json") if a.bf16 else RESULTS)
    torch.set_num_threads(a.threads)
    kinds = ["euler", "euler-power", "heun", "rk4", "dncnn"]
    if a.bf16:
        kinds = [f"{k}{suffix}" for k in kinds for suffix in ("", "+bf16")]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 1, a.crop, a.crop, generator=gen)
    y = x + 0.5 * torch.randn(x.shape, generator=gen)

    models, opts, res = {}, {}, {k: {"init": [], "step": [], "enforce": []} for k in kinds}
    for k in kinds:
        t0 = time.perf_counter()
        models[k] = build(k.removesuffix("+bf16"), a.width, a.depth, a.crop)
        res[k]["init"].append(time.perf_counter() - t0)
        opts[k] = torch.optim.Adam(models[k].parameters(), lr=1e-3)
    for r in range(a.repeats + 1):  # first round is a warm-up, not recorded
        for k in kinds:
            m, opt = models[k], opts[k]
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=k.endswith("+bf16")):
                loss = ((m(y).float() - x) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            t1 = time.perf_counter()
            if hasattr(m, "enforce_constraints"):
                m.enforce_constraints()
            t2 = time.perf_counter()
            if r > 0:
                res[k]["step"].append(t1 - t0)
                if hasattr(m, "enforce_constraints"):
                    res[k]["enforce"].append(t2 - t1)

    rows = {}
    for k in kinds:
        m = models[k]
        row = {"init_seconds": res[k]["init"][0],
               "train_step_median": statistics.median(res[k]["step"]),
               "train_step_min": min(res[k]["step"]),
               "parameters": sum(q.numel() for q in m.parameters())}
        if res[k]["enforce"]:
            row["enforce_median"] = statistics.median(res[k]["enforce"])
            row["enforce_min"] = min(res[k]["enforce"])
            row["certified_lipschitz"] = m.certified_lipschitz()
            w = m.xi.layers[0].weight
            power = conv_power_norm(w, 1, (a.crop, a.crop), iterations=300)
            row["layer0_power_norm_at_crop"] = power
            row["layer0_certified_any_size"] = conv_norm_upper_bound(w, 1, grid=16)
            row["layer0_certified_at_crop"] = conv_norm_upper_bound(w, 1, (a.crop, a.crop))
        else:
            row["lipschitz_upper_bound"] = m.lipschitz_upper_bound()
        rows[k] = row
    base = rows["dncnn"]["train_step_min"]
    for k in kinds:
        rows[k]["step_ratio_vs_dncnn_min"] = rows[k]["train_step_min"] / base

    out = {"config": vars(a), "machine": machine_info(), "results": rows}
    hdr = (f"{'model':16s} {'init s':>8s} {'step med':>9s} {'step min':>9s} {'enforce':>8s} "
           f"{'x DnCNN':>8s} {'cert Lip':>9s}")
    print(f"width {a.width}, depth {a.depth}, batch {a.batch} x {a.crop}^2, "
          f"{a.threads} thread(s), {a.repeats} repeats")
    print(hdr)
    for k, r in rows.items():
        lip = r.get("certified_lipschitz", r.get("lipschitz_upper_bound"))
        print(f"{k:16s} {r['init_seconds']:8.3f} {r['train_step_median']:9.3f} "
              f"{r['train_step_min']:9.3f} {r.get('enforce_median', 0.0):8.3f} "
              f"{r['step_ratio_vs_dncnn_min']:8.2f} {lip:9.3g}")
    path = Path(a.out)
    atomic_write_json(path, out)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
