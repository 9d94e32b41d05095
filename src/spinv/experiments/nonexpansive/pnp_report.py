"""``results.md``, ``convergence.png`` and ``reconstructions.png`` of the experiment
``nonexpansive pnp`` (:mod:`spinv.experiments.nonexpansive.pnp`)."""

from __future__ import annotations

import numpy as np
import torch

from spinv.experiments.nonexpansive.report import markdown_table

__all__ = ["image_magnitude", "write_pnp_report"]


def image_magnitude(x: torch.Tensor) -> np.ndarray:
    """The first image of ``x`` as a real numpy array (complex: its magnitude)."""
    return (x.abs() if x.is_complex() else x)[0, 0].float().cpu().numpy()


def _fmt(v, spec: str) -> str | None:
    return None if v is None else format(v, spec)


def _figures(study, analytic_name: str) -> None:
    """``convergence.png`` (residual and PSNR per iteration) and ``reconstructions.png``
    (test slice ``show_index``)."""
    from spinv.experiments.nonexpansive.report import plot_images, plot_pnp_curves

    result, out, test, k = study.result, study.out, study.test, study.config.show_index
    runs = {name: {"relative_residuals": r["relative_residuals"],
                   "psnr": r["psnr_per_iteration"]}
            for name, r in result["test"].items() if "relative_residuals" in r}
    plot_pnp_curves(runs, out / "convergence.png",
                    title=f"{result['dataset']}, mean over {len(result['test_indices'])} "
                          "test slices")
    images = {"ground truth": test.truth[k, 0].cpu().numpy(),
              analytic_name: image_magnitude(test.analytic[k:k + 1])}
    for name, x in study.recon.items():
        images[name] = np.nan_to_num(image_magnitude(x[k:k + 1]))
    captions = {name: f"{r['psnr'][k]:.2f} dB / {r['ssim'][k]:.3f}"
                for name, r in result["test"].items() if r.get("psnr") is not None}
    plot_images(images, out / "reconstructions.png", captions)


def _tables(result: dict) -> tuple[str, str]:
    """The methods' table and the denoisers' table."""
    rows = []
    for name, r in result["test"].items():
        params = ", ".join(f"{a}={b:.3g}" for a, b in r.get("params", {}).items()
                           if b is not None)
        rows.append([name, r["psnr_mean"], r.get("ssim_mean"), params or None,
                     _fmt(r.get("final_relative_residual"), ".2e"),
                     _fmt(r.get("certified_lipschitz"), ".4g"),
                     _fmt(r.get("certified_averagedness"), ".4g")])
    methods = markdown_table(["method", "mean PSNR", "mean SSIM", "chosen on validation",
                              "final rel. residual", "certified Lip", "certified alpha"], rows)
    denoisers = markdown_table(
        ["denoiser", "final loss", "sigma^2", "train s", "certified Lip", "certified alpha"],
        [[name, _fmt(d.get("final_loss"), ".3g"), _fmt(d.get("identity_loss"), ".3g"),
          d.get("train_seconds"), _fmt(d.get("certified_lipschitz"), ".4g"),
          _fmt(d.get("certified_averagedness"), ".4g")]
         for name, d in result["denoisers"].items()])
    return methods, denoisers


def write_pnp_report(study) -> None:
    """The figures and ``results.md`` of a finished
    :class:`~spinv.experiments.nonexpansive.pnp.PnPStudy`."""
    from spinv.atomic import atomic_write_text

    c, result = study.config, study.result
    _figures(study, study.test.problem.analytic_name)
    dataset = result["dataset"]
    setup = (f"{c.n_angles} views, {c.photons} photons" if c.problem == "ct"
             else f"{c.mask} mask, rate {c.rate}, noise {c.noise}")
    what = "low-dose CT" if c.problem == "ct" else "MRI"
    methods, denoisers = _tables(result)
    md = [f"# PnP reconstruction, {what} ({dataset})", "",
          f"{dataset} at {c.image_size}x{c.image_size}; {setup}. Parameters chosen on "
          f"validation slices {result['val_indices']} by mean PSNR (grids in results.json, "
          f"`validation`), then test slices {result['test_indices']} reconstructed once: mean "
          f"over them below. PnP-PGD (Algorithm 6): {c.iterations} iterations, step "
          f"c/||A||^2; PnP-ADMM: {c.admm_iterations} iterations, rho = r ||A||^2. Relaxed "
          "denoiser (1 - weight) id + weight Phi; its certificate (Lipschitz bound, "
          "averagedness alpha = weight x alpha(Phi)) is that of the denoiser actually used. "
          f"Denoisers trained {c.train_steps} steps at sigma in {c.denoiser_sigmas} on the "
          f"{dataset} training split; seed {c.seed}; {result['seconds']:.0f} s in total.",
          "", methods, "", "Denoisers (final training loss vs sigma^2, the loss of the "
          "identity):", "", denoisers, "", "![convergence](convergence.png)", "",
          "![reconstructions](reconstructions.png)", ""]
    atomic_write_text(study.out / "results.md", "\n".join(md))
