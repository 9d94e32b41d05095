# ruff: noqa: E501, E702
"""Training-set-only diagnostic of the chapter-1 line learning, kept as the record of the runs in
``results/sampling/diagnostics/outputs.md`` (moved here from ``results/``: code lives in the
code tree). Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python
tools/diagnostics/sampling_train_loss.py ...`` (arguments as in that file)."""
import json
import sys

import numpy as np
import torch

from spinv.bilevel.data import make_lower_level, training_and_test
from spinv.bilevel.implicit import SolverOptions
from spinv.bilevel.learn import tune_alpha
from spinv.bilevel.lower_level import make_regulariser

d = sys.argv[1]
m = json.load(open(f"{d}/metrics.json"))
train, _ = training_and_test("brain-t1", 32, 7, None)
ll = make_lower_level(train, make_regulariser("tv", gamma=0.01), noise=0.02, eps=0.01, seed=0)
opts = SolverOptions(method="newton", tol=1e-6, cg_tol=1e-6)
out = {}
for name in sys.argv[2:]:
    f = f"{d}/pattern.npy" if name == "learned" else f"{d}/baseline_{name}.npy"
    mask = torch.as_tensor(np.load(f), dtype=torch.float64)
    a0 = m["results"][name]["alpha"] if name in m["results"] else m["alpha"]
    r = tune_alpha(ll, mask, alpha0=a0, maxiter=15, opts=opts)
    out[name] = {"rate": r.sampling_rate, "alpha": r.alpha, "training_loss": r.loss}
    print(name, out[name], flush=True)
json.dump(out, open(f"{d}/training_losses.json", "w"), indent=1)
