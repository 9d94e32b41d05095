"""PnP-PGD with the shipped zoo denoisers vs TV (issue 14.2), parameters chosen on validation.

Run from the repository root (one thread)::

    export OMP_NUM_THREADS=1
    .venv/bin/python tools/diagnostics/zoo_denoisers_pnp.py ct results/zoo-denoisers/ct
    .venv/bin/python tools/diagnostics/zoo_denoisers_pnp.py mri results/zoo-denoisers/mri

Problems: ``ct`` is the demo's (ct-head area-downsampled to 64x64, 50 views, 1e4 photons,
simulated on a 2x finer grid; :func:`spinv.problems.ct_problem`); ``mri`` is that of
``configs/nonexpansive-pnp-mri.yaml`` (brain-t1 at 64x64, variable-density Cartesian lines at
25 %, complex noise 0.02, mask seed 0). Protocol of :mod:`spinv.experiments.nonexpansive.pnp`:
on validation slices (ct 3 of 20, mri 2 of 28, evenly spaced; noise seed 1) TV's alpha (log grid
plus golden sections) and, per denoiser, the relaxation weight lambda of
:math:`(1-\\lambda)\\mathrm{id}+\\lambda\\Phi` and the step :math:`c/\\|A\\|^2` of Algorithm 6
are chosen by mean whole-image PSNR; then every test slice (noise seed 0) is reconstructed
once. Reported: PSNR (R = max of the reference, as ``spinv evaluate``) and SSIM on the whole
image and inside the region of interest (CT body mask, MRI foreground), the certificate of the
relaxed denoiser used, and the fixed-point residual :math:`\\|u_{k+1}-u_k\\|/\\|u_0\\|` per
iteration (nonincreasing for an averaged iteration map, Theorem 3.2.4). ``results.json`` is
rewritten after each method, and methods already in it are skipped (so the script can be run
again as more denoisers are released).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from spinv.experiments.nonexpansive.pnp_protocol import (
    PnPSettings,
    evenly_spaced,
    grid_search,
    make_case,
    run_pnp_method,
    run_tv,
)
from spinv.learned.pnp import RelaxedDenoiser, plot_fixed_point_residuals

DENOISERS = [f"denoise-{k}-s{s}" for k in ("averaged", "nonexpansive", "dncnn")
             for s in ("0.05", "0.1")]
WEIGHTS = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
STEPS = [1.0, 1.9]
TV_GRID = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]


def setup(kind: str):
    """``(problem, val case, test case, description)`` of ``kind`` (module docstring)."""
    from spinv.problems import ct_problem, mri_problem
    from spinv.training.data import load_images_for

    if kind == "ct":
        problem = ct_problem(64, 50, photons=1e4, upsample=2)
        dataset, resize, n_val = "ct-head", "area", 3
        text = "ct-head 64x64 (area), 50 views, 1e4 photons, simulated on a 2x finer grid"
    else:
        problem = mri_problem(64, pattern="lines", rate=0.25, noise=0.02, seed=0)
        dataset, resize, n_val = "brain-t1", "bilinear", 2
        text = "brain-t1 64x64, variable-density lines 25 %, complex noise 0.02, mask seed 0"
    val = load_images_for(dataset, "val", 64, resize=resize)
    test = load_images_for(dataset, "test", 64, resize=resize)
    val_idx = evenly_spaced(val.shape[0], n_val)
    info = {"problem": text, "dataset": dataset, "val_indices": val_idx,
            "n_test": int(test.shape[0])}
    return problem, make_case(problem, val[val_idx], 1), make_case(problem, test, 0), info


def roi_metrics(x: torch.Tensor, truth: torch.Tensor, kind: str) -> dict:
    """Whole-image and ROI PSNR / SSIM (means and per slice; R = max of the reference)."""
    from spinv.metrics import psnr, ssim
    from spinv.training.evaluate import roi_masks

    mag = (x.abs() if x.is_complex() else x).float()
    m = roi_masks(truth, kind)
    out = {}
    for tag, mask in (("image", None), ("roi", m)):
        p = psnr(mag, truth, mask=mask).tolist()
        s = ssim(mag.clamp(-10, 10), truth, mask=mask).tolist()
        out[f"psnr_{tag}"], out[f"ssim_{tag}"] = sum(p) / len(p), sum(s) / len(s)
        out[f"psnr_{tag}_per_slice"], out[f"ssim_{tag}_per_slice"] = p, s
    return out


def tv(val, test, kind: str) -> dict:
    from spinv.variational.reconstruct import log_search

    alpha, hist = log_search(lambda a: run_tv(val, a, 300, with_ssim=False)["psnr_mean"],
                             TV_GRID, 6)
    r = run_tv(test, alpha, 300, keep_x=True)
    return {"params": {"alpha": alpha}, "validation": [{"alpha": a, "score": s} for a, s in hist],
            "seconds": r["seconds"], **roi_metrics(r["x"], test.truth, kind)}


def residual_summary(res: list) -> dict:
    """Final value and monotonicity of a fixed-point residual history."""
    vals = [v for v in res if v is not None]
    ratios = [b / a for a, b in zip(vals, vals[1:], strict=False) if a > 0]
    return {"relative_residuals": res, "final_relative_residual": vals[-1] if vals else None,
            "residual_at_10": vals[9] if len(vals) > 9 else None,
            "max_increase_ratio": max(ratios) if ratios else None,
            "nonincreasing": all(r <= 1 + 1e-6 for r in ratios)}


def pnp(name: str, val, test, kind: str) -> dict:
    from spinv.training import load_model
    from spinv.zoo import resolve_model

    model, cfg = load_model(resolve_model(name))
    model.eval()
    grid = [{"weight": w, "step_factor": c} for w in WEIGHTS for c in STEPS]

    def score(p: dict) -> float:
        return run_pnp_method(val, model, PnPSettings("pgd", **p), with_ssim=False)["psnr_mean"]

    t0 = time.process_time()
    best, table = grid_search(score, grid)
    r = run_pnp_method(test, model, PnPSettings("pgd", **best), track=True)
    relaxed = RelaxedDenoiser(model, best["weight"])
    return {"params": best, "validation": table,
            "certified_lipschitz": relaxed.certified_lipschitz(),
            "certified_averagedness": relaxed.certified_averagedness(),
            "denoiser_sigma": cfg.problem.noise_sigma,
            "cpu_seconds": time.process_time() - t0, "seconds_test": r["seconds"],
            "psnr_per_iteration": r["psnr_per_iteration"],
            **residual_summary(r["relative_residuals"]), **roi_metrics(r["x"], test.truth, kind)}


def write_markdown(out: Path, result: dict) -> None:
    info = result["info"]
    lines = [f"# PnP-PGD with the zoo denoisers vs TV: {info['problem']}", "",
             f"Validation slices {info['val_indices']} of the val split (parameters chosen by "
             f"mean PSNR); all {info['n_test']} test slices reconstructed once. PnP-PGD "
             "(Algorithm 6): 100 iterations from the analytic reconstruction. PSNR with "
             "R = max of the reference; roi = body mask (CT) / foreground (MRI).", "",
             "| method | PSNR image | SSIM image | PSNR roi | SSIM roi | chosen on validation "
             "| certified Lip / alpha | rel. residual k=10 / 100 | nonincreasing |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["methods"].items():
        params = ", ".join(f"{k}={v:.3g}" for k, v in r.get("params", {}).items())
        cert, avg = r.get("certified_lipschitz"), r.get("certified_averagedness")
        cert_s = "–" if cert is None else f"{cert:.3g}" + ("" if avg is None else f" / {avg:.3g}")
        res = r.get("final_relative_residual")
        res_s = "–" if res is None else f"{r['residual_at_10']:.2e} / {res:.2e}"
        mono = "–" if res is None else ("yes" if r["nonincreasing"] else
                                        f"no (max ratio {r['max_increase_ratio']:.3g})")
        lines.append(f"| {name} | {r['psnr_image']:.2f} | {r['ssim_image']:.3f} | "
                     f"{r['psnr_roi']:.2f} | {r['ssim_roi']:.3f} | {params or '–'} | {cert_s} "
                     f"| {res_s} | {mono} |")
    lines += ["", f"Machine: one torch thread, float32; {result['machine']}.", "",
              "![fixed-point residuals](residuals.png)", ""]
    (out / "results.md").write_text("\n".join(lines))


def main(kind: str, out: str, names: list[str]) -> None:
    import platform

    torch.set_num_threads(1)
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    path = out_path / "results.json"
    result = json.loads(path.read_text()) if path.is_file() else {"methods": {}}
    _, val, test, info = setup(kind)
    result["info"] = info
    result["machine"] = f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    methods = result["methods"]
    methods.setdefault("analytic", roi_metrics(test.analytic, test.truth, kind))
    if "TV" not in methods:
        methods["TV"] = tv(val, test, kind)
    for name in names:
        if f"PnP-PGD {name}" in methods:
            continue
        methods[f"PnP-PGD {name}"] = pnp(name, val, test, kind)
        path.write_text(json.dumps(result, indent=1))
        print(name, f"{methods[f'PnP-PGD {name}']['psnr_image']:.2f}", flush=True)
    path.write_text(json.dumps(result, indent=1))
    hist = {k: [v if v is not None else math.nan for v in r["relative_residuals"]]
            for k, r in methods.items() if "relative_residuals" in r}
    if hist:
        plot_fixed_point_residuals(hist, out_path / "residuals.png",
                                   title=f"PnP-PGD fixed-point residual ({kind}, test)")
    write_markdown(out_path, result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(",") if len(sys.argv) > 3 else DENOISERS)
