"""The authors' side of the anchors: runs *inside the throw-away venv* of ``setup_authors.sh``.

``python authors.py TASK INPUT.npz`` imports the authors' code from ``$SPINV_AUTHORS_CODE``
(never from this repository), applies the shims of :mod:`shims`, times the task and prints one
JSON object on stdout: wall and CPU seconds of every repetition, the shims applied and the
versions. Tasks: ``lpg-equivariant`` / ``lpg-ordinary`` (a train step of the learned
forward-backward method of ``fsherry/equivariant_image_recon``, their chest-CT script's
settings) and ``bilevel-gradient`` (one upper-level objective + gradient of
``fsherry/bilevelmri``). It imports nothing from spinv.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shims  # noqa: E402


def _code(repo: str) -> Path:
    root = os.environ.get("SPINV_AUTHORS_CODE", "")
    path = Path(root) / repo
    if not root or not path.is_dir():
        raise FileNotFoundError(f"{repo}: not found under SPINV_AUTHORS_CODE={root!r}")
    sys.path.insert(0, str(path))
    return path


def _timed(fn, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": wall, "cpu_s": cpu}


def lpg(task: str, data: dict, repeats: int) -> dict:
    """Train step (forward, backward, Adam) of the authors' learned forward-backward model."""
    _code("equivariant_image_recon")
    shims.numpy_aliases()
    shims.stub_astra()
    import e2cnn
    from equivariant_ip.reconstruction_methods.lfb import LearnedForwardBackward

    n, width, depth, memory = (int(data[k]) for k in ("size", "width", "iterations", "memory"))
    try:
        import astra
        from equivariant_ip.ct.forward_operators import RadonForwardOperator

        vol = astra.create_vol_geom(n, n)
        proj = astra.create_proj_geom("parallel", 1.0, int(data["n_detectors"]),
                                      np.asarray(data["angles"], dtype=np.float64))
        op = RadonForwardOperator(vol, proj)
        ray = op.raytransform
        operator = "astra CPU 'line' projector (the authors' RayTransform)"
    except RuntimeError:
        m = sp.csr_matrix((data["data"], data["indices"], data["indptr"]),
                          shape=tuple(data["shape"]))
        ray = shims.MatrixRayTransform(m, (n, n), (int(data["n_angles"]),
                                                   int(data["n_detectors"])))
        operator = "shim: the same Joseph matrix, scipy, per-sample numpy round trip"

    def grad(x, y):  # equivariant_ip.data_terms.ls_data_term_grad with this operator
        return ray.adjoint(ray(x) - y)

    conv = {"kernel_size": 3, "padding": 1, "padding_mode": "replicate"}
    torch.manual_seed(0)
    if task == "lpg-equivariant":
        from equivariant_ip.proximal_blocks.primal_equivariant import PrimalProximalEquivariant

        space = e2cnn.gspaces.Rot2dOnR2(4)
        feat = e2cnn.nn.FieldType(space, (width // 4) * [space.regular_repr])

        def block():
            return PrimalProximalEquivariant(conv, in_channels=1, n_memory=memory,
                                             feat_type_intermed=feat, init_as_id=False)
    else:
        from equivariant_ip.proximal_blocks.primal_ordinary import PrimalProximalOrdinary

        def block():
            return PrimalProximalOrdinary(conv, in_channels=1, n_memory=memory,
                                          channels=width, init_as_id=False)

    model = LearnedForwardBackward(grad, block, depth)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.from_numpy(np.asarray(data["x"], dtype=np.float32))
    y = torch.from_numpy(np.asarray(data["y"], dtype=np.float32))
    model.train()

    def step():  # equivariant_ip.utils.train_validate.train_one_epoch, one batch
        opt.zero_grad()
        recon = model(torch.zeros_like(x), y)
        loss = 0.5 * torch.mean((recon - x) ** 2)
        loss.backward()
        opt.step()

    out = _timed(step, repeats)
    out.update(operator=operator, parameters=sum(p.numel() for p in model.parameters()),
               e2cnn=getattr(e2cnn, "__version__", "?"))
    return out


def bilevel(task: str, data: dict, repeats: int) -> dict:
    """One upper-level objective + gradient of ``fsherry/bilevelmri`` (free pattern, TV with
    Huber smoothing, the settings of its example notebook), cold start every time."""
    _code("bilevelmri")
    torch.set_default_dtype(torch.float64)
    from bilevelmri.functionals import Smoothed1Norm
    from bilevelmri.linear_ops.gradients import Grad
    from bilevelmri.loss_functions import least_squares
    from bilevelmri.lower_level import _lower_level_hessian, _lower_level_solver
    from bilevelmri.objective_function import obj_func_general_parametrisation
    from bilevelmri.parametrisations import free_parametrisation

    shims.old_torch_fft(_lower_level_solver, _lower_level_hessian)
    x = torch.from_numpy(np.stack([data["x"], np.zeros_like(data["x"])], -1))
    y = torch.from_numpy(np.stack([data["y"].real, data["y"].imag], -1))
    n1, n2 = data["x"].shape[-2:]
    params = {"model": {"n1": n1, "n2": n2}, "alg_params": {
        "ll_sol": {"maxit": int(data["ll_maxit"]), "tol": float(data["ll_tol"])},
        "lin_sys": {"maxit": int(data["cg_maxit"]), "tol": float(data["cg_tol"])},
        "LBFGSB": {"maxit": 1, "pgtol": 1e-8}}}
    p = np.concatenate([data["s"].reshape(-1), [float(data["alpha"]), float(data["eps"])]])
    reg = Smoothed1Norm(gamma=float(data["gamma"]))
    grads = []

    def evaluate():
        params["alg_params"]["ll_sol"].pop("xinit", None)  # cold start
        _, _, g = obj_func_general_parametrisation(
            p, {"x": x, "y": y}, free_parametrisation, Grad(), reg, least_squares,
            lambda q: torch.zeros((), dtype=q.dtype), params)
        grads[:] = [g]

    out = _timed(evaluate, repeats, warmup=0)
    out.update(grad_s=grads[0][:-2].tolist(), grad_alpha=float(grads[0][-2]))
    return out


def nonexpansive(task: str, data: dict, repeats: int) -> dict:
    """Train step of ``fsherry/non-expansive-odes`` (``utils.denoising.training_step``: the
    one-step power-method rescaling ``compute_spectral_norms(k=1)``, forward, backward, SGD
    with momentum) for its Euler ``NonexpansiveDenoiser`` or its ``DnCNN`` (batch norm)."""
    _code("non-expansive-odes")
    from non_expansive_odes.models.image_denoisers import DnCNN, NonexpansiveDenoiser

    width, depth, crop = (int(data[k]) for k in ("width", "depth", "crop"))
    torch.manual_seed(0)
    if task == "nonexpansive-euler":
        model = NonexpansiveDenoiser(in_channels=1, int_channels=width, blocks=depth,
                                     input_size=(crop, crop))
    else:
        model = DnCNN(in_channels=1, int_channels=width, blocks=depth)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    x = torch.from_numpy(np.asarray(data["x"], dtype=np.float32))
    noisy = torch.from_numpy(np.asarray(data["y"], dtype=np.float32))

    def step():
        model.train()
        if isinstance(model, NonexpansiveDenoiser):
            model.compute_spectral_norms(1)
        opt.zero_grad()
        loss = torch.mean((model(noisy) - x) ** 2)
        loss.backward()
        opt.step()

    out = _timed(step, repeats)
    out.update(parameters=sum(p.numel() for p in model.parameters()))
    return out


TASKS = {"lpg-equivariant": lpg, "lpg-ordinary": lpg, "bilevel-gradient": bilevel,
         "nonexpansive-euler": nonexpansive, "dncnn": nonexpansive}


def main(argv: list[str]) -> int:
    task, path = argv[0], argv[1]
    repeats = int(argv[2]) if len(argv) > 2 else 3
    torch.set_num_threads(int(os.environ.get("SPINV_ANCHOR_THREADS", "1")))
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    out = TASKS[task](task, data, repeats)
    out.update(task=task, shims=shims.applied(), torch=torch.__version__,
               numpy=np.__version__, threads=torch.get_num_threads())
    print("ANCHOR-JSON " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
