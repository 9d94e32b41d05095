# ruff: noqa: E501, E702
"""Training-set-only diagnostic of the chapter-1 line learning, kept as the record of the runs in
``results/sampling/diagnostics/outputs.md`` (moved here from ``results/``: code lives in the
code tree). Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python
tools/diagnostics/sampling_lines.py ...`` (arguments as in that file)."""
import sys
import time

import numpy as np
import torch

from spinv.bilevel.config import SamplingConfig
from spinv.bilevel.data import make_lower_level, training_and_test
from spinv.bilevel.implicit import SolverOptions
from spinv.bilevel.learn import learn, threshold_and_retune, tune_alpha
from spinv.bilevel.lower_level import make_regulariser
from spinv.bilevel.parametrisations import CartesianLines

beta = float(sys.argv[1]); weights = sys.argv[2]
cfg = SamplingConfig.from_dict({"size": 32, "n_train": 7})
train, test = training_and_test(cfg.data, 32, 7, None)
reg = make_regulariser("tv", gamma=0.01)
ll = make_lower_level(train, reg, noise=0.02, eps=0.01, seed=0)
opts = SolverOptions(method="newton", tol=1e-6, cg_tol=1e-6)
full = torch.ones(32, 32, dtype=torch.float64)
init = tune_alpha(ll, full, alpha0=1e-3, maxiter=15, opts=opts)
par = CartesianLines((32, 32), axis=1, alpha_scale=max(init.alpha, 1e-6), weights=weights)
t0 = time.time()
res = learn(ll, par, beta, lam0=par.initial(init.alpha), maxiter=200, opts=opts)
fin = threshold_and_retune(ll, res.pattern, res.alpha, 0.0, maxiter=15, opts=opts)
w = res.lam[:-1]
print(f"beta {beta} {weights}: its {res.iterations} evals {res.evaluations} {res.message}; "
      f"cont loss {res.loss:.4f} rate {res.sampling_rate:.4f}; thresholded train loss {fin.loss:.4f}"
      f" alpha {fin.alpha:.4g}; {time.time()-t0:.1f}s")
print("line weights:", np.round(w, 3).tolist())
print("lines on:", np.nonzero(w > 0)[0].tolist())
