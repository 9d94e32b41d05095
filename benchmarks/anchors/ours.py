"""spinv's side of the anchors (and scikit-image, which runs in the same process).

Every function returns per-repetition wall and CPU seconds (``time.process_time`` of this
process; with one torch thread it is barely perturbed by other processes on a shared machine).
"""

from __future__ import annotations

import time

import numpy as np
import torch


def timed(fn, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": wall, "cpu_s": cpu}


def phantom(n: int, seed: int = 0) -> torch.Tensor:
    """Two ellipses plus 1% noise, ``(1, 1, n, n)`` float32 (as benchmarks/learned.py)."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    x = ((xx / 0.8) ** 2 + (yy / 0.6) ** 2 < 1).float() * 0.5
    x = x + 0.5 * ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.05).float()
    return (x + 0.01 * torch.randn(n, n, generator=gen))[None, None]


def ct_vs_skimage(n: int, n_angles: int, repeats: int, sk_repeats: int) -> list[dict]:
    """Forward, unfiltered back-projection and ramp FBP: ``skimage.transform.radon`` /
    ``iradon`` (``circle=False``, the same ``ceil(sqrt 2 N)`` unit bins) vs ParallelBeamCT."""
    from skimage.transform import iradon, radon

    from spinv.operators import ParallelBeamCT

    op = ParallelBeamCT(n, n_angles)
    theta = np.degrees(op.angles.double().numpy())
    x = phantom(n)
    img = x[0, 0].double().numpy()
    sino = radon(img, theta, circle=False)
    y = op(x)
    pairs = {
        "forward": (lambda: radon(img, theta, circle=False), lambda: op(x)),
        "adjoint": (lambda: iradon(sino, theta, output_size=n, filter_name=None, circle=False),
                    lambda: op.adjoint(y)),
        "fbp": (lambda: iradon(sino, theta, output_size=n, filter_name="ramp", circle=False),
                lambda: op.fbp(y)),
    }
    rows = []
    with torch.no_grad():
        for name, (ref, ours) in pairs.items():
            rows.append({"anchor": f"skimage {name}", "size": n, "n_angles": n_angles,
                         "reference": timed(ref, sk_repeats), "ours": timed(ours, repeats)})
    return rows


def lpg_problem(n: int, n_angles: int = 50):
    from spinv.operators import ParallelBeamCT

    op = ParallelBeamCT(n, n_angles)
    x = phantom(n)
    return op, x, op(x).detach()


def lpg_train_step(op, x, y, group: str | None, width: int, iterations: int, memory: int):
    """A closure doing one train step (forward, backward, Adam) of spinv's learned proximal
    gradient, loss ``0.5 mean((Phi(y) - x)^2)`` as in the authors' ``train_one_epoch``."""
    from spinv.learned import LearnedProximalGradient

    model = LearnedProximalGradient(op, group=group, width=width, iterations=iterations,
                                    memory=memory, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * torch.mean((model(y) - x) ** 2)
        loss.backward()
        opt.step()

    return step, sum(p.numel() for p in model.parameters())


def bilevel_problem(size: int, seed: int = 0):
    """One brain-T1 slice at ``size``^2, TV (Huber gamma 0.01), noise 0.02, eps 1e-2 (as
    benchmarks/bilevel.py) and a pattern of random weights in [0, 1] (centred k-space)."""
    from spinv.bilevel.data import make_lower_level, training_and_test
    from spinv.bilevel.lower_level import make_regulariser

    train, _ = training_and_test("brain-t1", size, 1, n_test=1)
    ll = make_lower_level(train, make_regulariser("tv", gamma=0.01), noise=0.02, eps=1e-2,
                          seed=seed)
    gen = torch.Generator().manual_seed(seed)
    return ll, torch.rand(size, size, generator=gen, dtype=torch.float64)


def bilevel_gradient(ll, s, alpha: float, setting: str):
    """A closure: one upper-level objective + gradient of spinv (cold start); ``setting``
    ``"default"`` (Newton-PCG, tol 1e-6, CG 1e-6, as the learning uses) or ``"authors-like"``
    (PDHG tol 1e-10, <= 1000 iterations, unpreconditioned CG 1e-6)."""
    from spinv.bilevel.implicit import SolverOptions, loss_and_gradient

    opts = (SolverOptions("newton", tol=1e-6, cg_tol=1e-6) if setting == "default" else
            SolverOptions("pdhg", tol=1e-10, maxit=1000, cg_tol=1e-6, precondition=False))
    result = {}

    def run():
        result["value"] = loss_and_gradient(ll, s, alpha, opts)

    return run, result


def denoiser_train_step(kind: str, width: int, depth: int, crop: int, x, y):
    """A closure: one train step of spinv's Euler nonexpansive denoiser *including*
    ``enforce_constraints()`` (the certificate that keeps the bound after every step), or of
    spinv's DnCNN, loss ``mean((Phi(y) - x)^2)``, Adam."""
    from spinv.nn.dncnn import DnCNN
    from spinv.nn.nonexpansive import NonexpansiveDenoiser

    if kind == "dncnn":
        model = DnCNN(1, width=width, depth=depth, zero_last=False, seed=0)
    else:
        model = NonexpansiveDenoiser.from_config(
            1, width=width, depth=depth, method="euler", gamma=1.99, residual=True,
            power_size=(crop, crop), seed=0, norm_control="certified")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = ((model(y) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(model, "enforce_constraints"):
            model.enforce_constraints()

    return step, model
