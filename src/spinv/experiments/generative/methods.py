r"""The reconstruction methods compared by the generative experiment: zero filling, TV (PDHG
over real images), the range constraint (Bora et al.), the mean-only and the covariance
regularisers (alternating minimisation, :mod:`spinv.generative.reconstruct`), and the
end-to-end post-processing CNN; and the MRI problems :math:`y = S(Fu+\eta)` they solve.

The data term is :math:`\tfrac1{2\sigma^2}\|Au-y\|^2` with the true :math:`\sigma`, so a fixed
weight :math:`\lambda` is meaningful across noise levels.
"""

from __future__ import annotations

import torch

from spinv.experiments.generative.config import GenerativeConfig

__all__ = ["METHODS", "Reconstructors", "make_problem", "tv_reconstruct", "weight_grid"]

METHODS = ("zero-filled", "tv", "range", "mean", "identity", "diagonal", "lowrank",
           "precision", "end-to-end")


def make_problem(x: torch.Tensor, rate: float, noise: float, pattern: str, mask_seed: int,
                 noise_seed: int):
    """The MRI problem :math:`A=SF` for ``pattern``/``rate`` (mask seeded by ``mask_seed``)
    with noise level ``noise``, on ``x``'s device, and its data :math:`y=S(Fx+\\eta)`
    (noise seeded by ``noise_seed``): ``(problem, y)``."""
    from spinv.problems import mri_problem

    problem = mri_problem(tuple(x.shape[-2:]), pattern, float(rate), float(noise),
                          seed=mask_seed).to(x.device)
    return problem, problem.simulate(x, seed=noise_seed)


def tv_reconstruct(operator, y: torch.Tensor, lam: float, noise: float, iterations: int = 300):
    """TV over real images: :math:`\\min_u \\tfrac1{2\\sigma^2}\\|Au-y\\|^2 + \\lambda\\,TV(u)`,
    i.e. :math:`\\tfrac12\\|Au-y\\|^2 + \\alpha TV(u)` with :math:`\\alpha=\\lambda\\sigma^2`,
    by PDHG (real images enforced by the prox of :math:`G=\\iota_{\\mathbb R^n}`)."""
    from spinv.variational.solvers import LeastSquaresBlock, PDHGOptions, RegulariserBlock, pdhg
    from spinv.variational.tv import TV

    alpha = lam * noise**2
    blocks = [LeastSquaresBlock(operator, y, op_norm=1.0), RegulariserBlock(TV(alpha=alpha))]
    x0 = operator.analytic(y).real
    options = PDHGOptions(iterations=iterations, tol=1e-5, track_objective=False)
    x, _ = pdhg(blocks, x0, options, g_prox=lambda x, t: x.real,
                g_value=lambda x: x.new_zeros(x.shape[0]))
    return x.real


def weight_grid(config: GenerativeConfig, method: str) -> list[float]:
    """The weights :math:`\\lambda` searched for ``method`` (``[1.0]``: nothing to tune)."""
    t = config.tuning
    if method in ("zero-filled", "end-to-end"):
        return [1.0]
    grid = {"tv": t.tv, "range": t.range, "mean": t.mean}.get(method, t.covariance)
    return [float(v) for v in grid]


class Reconstructors:
    """The trained models (``{kind: VAE}``, ``end_to_end``) and how each method reconstructs
    with them (:meth:`reconstruct`)."""

    def __init__(self, config: GenerativeConfig, models: dict, end_to_end=None) -> None:
        from spinv.generative.regularisers import (
            CovarianceRegulariser,
            MeanOnlyRegulariser,
            RangeConstraint,
        )

        self.config, self.models, self.end_to_end = config, models, end_to_end
        mean_model = models["identity"]
        weight = float(config.recon.logdet_weight)
        self.regularisers = {"range": RangeConstraint(mean_model, latent_weight=1.0),
                             "mean": MeanOnlyRegulariser(mean_model)}
        for kind, model in models.items():
            self.regularisers[kind] = CovarianceRegulariser(model, logdet_weight=weight)

    def reconstruct(self, method: str, operator, y: torch.Tensor, noise: float,
                    lam: float) -> torch.Tensor:
        """The reconstruction of ``y`` (noise level ``noise``) by ``method`` with weight
        ``lam`` (the range constraint: the weight of the latent penalty against the data
        term); latent starts seeded by the config's seed."""
        from spinv.generative.reconstruct import GenerativeOptions, reconstruct_generative

        if method == "zero-filled":
            return operator.analytic(y).real
        if method == "tv":
            return tv_reconstruct(operator, y, lam, noise, self.config.tv.iterations)
        if method == "end-to-end":
            self.end_to_end.operator = operator
            with torch.no_grad():
                return self.end_to_end(y).real
        rc = self.config.recon
        options = GenerativeOptions(
            method=rc.method, iterations=rc.iterations, z_steps=rc.z_steps, z_lr=rc.z_lr,
            n_inits=rc.n_inits, cg_iterations=rc.cg_iterations, seed=self.config.seed,
        )
        res = reconstruct_generative(operator, y, self.regularisers[method], lam=lam,
                                     noise_std=noise, options=options)
        return res.u
