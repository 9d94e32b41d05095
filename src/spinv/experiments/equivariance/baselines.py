"""Classical baselines of the equivariance experiments: the analytic reconstruction and TV.

* **analytic**: filtered back-projection (ramp filter) for CT, the zero-filled inverse Fourier
  transform :math:`F^*S^*y` (its modulus) for MRI;
* **TV**: Eq. (1.3) with :math:`A = \\nabla` (the smoothed TV of thesis §1.2, solved by PDHG,
  Algorithm 1), with :math:`\\alpha` maximising the mean PSNR on ``tune_images`` *training*
  slices (:func:`spinv.variational.reconstruct.tune_alpha`: grid ``alpha_grid`` then a
  golden-section refinement), never on held-out slices. CT reconstructions are constrained to be
  nonnegative.

Both are evaluated like the learned methods
(:func:`spinv.experiments.equivariance.evaluation.image_metrics`) on the upright and the rotated
held-out sets, so that the tables of :mod:`spinv.experiments.equivariance.sweeps` show where
the learned methods stand.
"""

from __future__ import annotations

from typing import Any

import torch

from spinv.experiments.equivariance.config import TVTuning
from spinv.experiments.equivariance.evaluation import image_metrics

__all__ = ["analytic_reconstruction", "baseline_metrics", "tune_tv_alpha"]


def analytic_reconstruction(operator, y: torch.Tensor) -> torch.Tensor:
    """FBP (ramp filter) for an operator with ``fbp``, else :math:`A^*y` (zero filling)."""
    with torch.no_grad():
        rec = operator.fbp(y) if hasattr(operator, "fbp") else operator.adjoint(y)
    return rec.abs() if rec.is_complex() else rec


def tune_tv_alpha(tuning: TVTuning, data, nonnegative: bool | None = None
                  ) -> tuple[float, dict]:
    """TV's :math:`\\alpha` for the mean PSNR on the first ``tune_images`` training slices
    (their fixed-noise measurements); returns ``(alpha, {"alphas": [...], "psnr": [...]})``.
    ``nonnegative=None``: constrained for real (CT) measurements, not for complex (MRI)."""
    from spinv.variational.reconstruct import VariationalOptions, tune_alpha

    k = min(tuning.tune_images, len(data.x_train))
    x, y = data.x_train[:k], data.y_train[:k]
    options = VariationalOptions(
        iterations=tuning.tune_iterations,
        nonnegative=not y.is_complex() if nonnegative is None else nonnegative)
    return tune_alpha(lambda _images: (data.operator, y), x, method="tv",
                      grid=tuning.alpha_grid, golden_iterations=tuning.golden_iterations,
                      return_history=True, options=options)


def baseline_metrics(tuning: TVTuning, data, keep: dict | None = None) -> dict[str, Any]:
    """``{"analytic": {...}, "TV": {...}, "alpha": a, "alpha_search": {...}}`` where each
    method holds ``upright``/``rotated`` metrics and its display ``name``. With a dict ``keep``,
    the reconstructions are stored in it as ``keep[name][split]`` (CPU, real)."""
    alpha, history = tune_tv_alpha(tuning, data)
    from spinv.variational.reconstruct import VariationalOptions, reconstruct_variational

    name = "FBP" if hasattr(data.operator, "fbp") else "zero-filled"
    out: dict[str, Any] = {"analytic": {"name": name}, "TV": {"name": "TV"},
                           "alpha": float(alpha), "alpha_search": history}
    for split, y, x, mask in (("upright", data.y_test, data.x_test, data.mask_test),
                              ("rotated", data.y_rot, data.x_rot, data.mask_rot)):
        options = VariationalOptions(iterations=tuning.tune_iterations,
                                     nonnegative=not y.is_complex())
        tv = reconstruct_variational(data.operator, y, "tv", alpha, options)
        for key, rec in (("analytic", analytic_reconstruction(data.operator, y)), ("TV", tv)):
            rec = (rec.abs() if rec.is_complex() else rec).float().cpu()
            out[key][split] = image_metrics(rec, x.cpu(), mask.cpu())
            if keep is not None:
                keep.setdefault(out[key]["name"], {})[split] = rec
    return out
