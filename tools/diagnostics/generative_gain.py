# ruff: noqa: E501, E402, E702, B023, E731  (a measurement script kept as it was run)
"""Gain of `spinv reconstruct --method generative` over TV on data like and unlike the VAE's
training data (issue 13.2 / 14.5). Usage: python tools/diagnostics/generative_gain.py MODEL OUTDIR [RATE NOISE [CASES]]
Writes OUTDIR/<case>.npz measurements, runs the CLI for every method, prints a table."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import rotate

from spinv.data import load_complex_sample, load_dataset
from spinv.generative.train import prepare_slices
from spinv.problems import mri_problem

model, out = sys.argv[1], Path(sys.argv[2])
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
noise = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
S = 32
out.mkdir(parents=True, exist_ok=True)
test = load_dataset("brain-t1", "test")  # (22, 224, 224), contiguous slab never trained/tuned on


def rot(stack, deg):
    return np.stack([np.clip(rotate(im, deg, reshape=False, order=1), 0, 1) for im in stack])


def other_subject():
    mag = np.abs(load_complex_sample()).astype(np.float32)  # (217, 181), another subject
    h, w = mag.shape
    pad = np.zeros((max(h, w),) * 2, np.float32)
    pad[(max(h, w) - h) // 2:(max(h, w) - h) // 2 + h, (max(h, w) - w) // 2:(max(h, w) - w) // 2 + w] = mag
    return pad[None] / pad.max()


cases = {
    "test slab": prepare_slices(test, S),
    "test slab rot90": prepare_slices(np.ascontiguousarray(np.rot90(test, 1, axes=(1, 2))), S),
    "test slab rot30": prepare_slices(rot(test, 30), S),
    "test slab x0.7": 0.7 * prepare_slices(test, S),
    "other subject (brain-complex)": prepare_slices(other_subject(), S),
    "natural photographs (test)": prepare_slices(load_dataset("natural", "test"), S),
}
if len(sys.argv) > 5:
    cases = {k: v for k, v in cases.items() if k in sys.argv[5].split(",")}
problem = mri_problem((S, S), "variable-density", rate, noise, seed=0)
# alpha: tuned once per method exactly as --alpha auto does (same problem for every case):
# TV on 4 bundled brain-t1 training images, the priors on 4 brain-t1 validation slices
from spinv.generative.from_model import tune_prior_weight
from spinv.reconstruction import load_reconstruction_model, tune_alpha_for

vae = load_reconstruction_model(model).network
a_tv = tune_alpha_for(problem, "tv", 300, 0)
a_cov, s_cov = tune_prior_weight(vae, problem, "covariance", seed=0)
a_mean, s_mean = tune_prior_weight(vae, problem, "mean", seed=0)
print(f"alpha: tv {a_tv:.4g}, covariance {a_cov:g} {s_cov}, mean {a_mean:g} {s_mean}", flush=True)
methods = [("zero-filled", []), ("tv", ["--alpha", repr(a_tv)]),
           ("generative", ["--prior", "covariance", "--model", model, "--alpha", repr(a_cov)]),
           ("generative", ["--prior", "mean", "--model", model, "--alpha", repr(a_mean)])]
rows = {}
for name, x in cases.items():
    f = out / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".npz")
    y = problem.simulate(x, seed=1)
    np.savez(f, y=y.numpy(), ground_truth=x.numpy(), problem=json.dumps(problem.to_dict()))
    rows[name] = {"n": int(x.shape[0])}
    for method, extra in methods:
        label = method if method != "generative" else f"generative-{extra[1]}"
        t = time.time()
        r = subprocess.run([sys.executable, "-m", "spinv.cli", "reconstruct", "--measurements", str(f),
                            "--method", method, *extra, "--out", str(f.with_suffix(f".{label}.npy")),
                            "--force"], capture_output=True, text=True)
        m = re.search(r"PSNR ([-0-9.]+) dB\s+SSIM ([-0-9.]+)", r.stdout)
        if m is None:
            print(name, label, r.stdout, r.stderr[-500:]); continue
        rows[name][label] = (float(m.group(1)), float(m.group(2)))
        print(f"{name:32s} {label:22s} PSNR {m.group(1)} SSIM {m.group(2)} ({time.time() - t:.0f} s)", flush=True)
(out / "results.json").write_text(json.dumps({"rate": rate, "noise": noise, "size": S, "rows": rows,
    "alpha": {"tv": a_tv, "covariance": a_cov, "mean": a_mean}}, indent=1))
print(f"\n| data (rate {rate}, sigma {noise}, {S}x{S}) | n | zero-filled | TV | mean prior | covariance prior | covariance - TV |")
print("|---|---|---|---|---|---|---|")
for name, r in rows.items():
    g = r.get("generative-covariance", (float("nan"),) * 2); tv = r.get("tv", (float("nan"),) * 2)
    cell = lambda k: "{:.2f} / {:.3f}".format(*r.get(k, (float("nan"),) * 2))
    print(f"| {name} | {r['n']} | {cell('zero-filled')} | {cell('tv')} | {cell('generative-mean')} | {cell('generative-covariance')} | {g[0] - tv[0]:+.2f} dB |")
