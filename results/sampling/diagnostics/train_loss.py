import json, sys, torch, numpy as np
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
