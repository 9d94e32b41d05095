# ruff: noqa: E501, E702
"""Training-set-only diagnostic of the chapter-1 line learning, kept as the record of the runs in
``results/sampling/diagnostics/outputs.md`` (moved here from ``results/``: code lives in the
code tree). Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python
tools/diagnostics/sampling_continuation.py ...`` (arguments as in that file)."""
import sys
import time

import numpy as np
import torch

from spinv.bilevel.data import make_lower_level, training_and_test
from spinv.bilevel.implicit import SolverOptions
from spinv.bilevel.learn import learn, threshold_and_retune, tune_alpha
from spinv.bilevel.lower_level import make_regulariser
from spinv.bilevel.parametrisations import CartesianLines

beta = float(sys.argv[1]); stages = [float(x) for x in sys.argv[2].split(",")]
train, test = training_and_test("brain-t1", 32, 7, None)
reg = make_regulariser("tv", gamma=0.01)
ll = make_lower_level(train, reg, noise=0.02, eps=0.01, seed=0)
opts = SolverOptions(method="newton", tol=1e-6, cg_tol=1e-6)
full = torch.ones(32, 32, dtype=torch.float64)
init = tune_alpha(ll, full, alpha0=1e-3, maxiter=15, opts=opts)
par = CartesianLines((32, 32), axis=1, alpha_scale=max(init.alpha, 1e-6))
def lines_mask(ls):
    m = torch.zeros(32, dtype=torch.float64); m[ls] = 1; return m[None, :].expand(32, 32).clone()
if len(sys.argv) > 3:
    for name, ls in (("gozcu", [16,15,17,14,18,23,19,21,20]), ("learned_direct", [9,10,14,15,16,17,19,22,23])):
        r = tune_alpha(ll, lines_mask(ls), alpha0=0.01, maxiter=15, opts=opts)
        print(f"{name}: train loss {r.loss:.4f} alpha {r.alpha:.4g}", flush=True)
t0 = time.time(); lam = par.initial(init.alpha); evals = 0
for f in stages:
    res = learn(ll, par, beta * f, lam0=lam, maxiter=200, opts=opts)
    lam = torch.as_tensor(res.lam); evals += res.evaluations
    print(f"  stage beta {beta*f:.4g}: its {res.iterations} evals {res.evaluations} rate {res.sampling_rate:.4f} loss {res.loss:.4f} obj {res.objective:.4f} lines {np.nonzero(res.lam[:-1] > 0)[0].tolist()}", flush=True)
fin = threshold_and_retune(ll, res.pattern, res.alpha, 0.0, maxiter=15, opts=opts)
print(f"continuation {stages}: total evals {evals}; thresholded rate {fin.sampling_rate:.4f} train loss {fin.loss:.4f} alpha {fin.alpha:.4g}; {time.time()-t0:.1f}s")
