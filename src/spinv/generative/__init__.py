"""Regularisation with generative models (talk 002, Duff et al. 2023; Bora et al. 2017).

* :mod:`spinv.generative.regularisers` -- mean-only, covariance and range-constraint
  regularisers :math:`R(u)=\\inf_z E(u,z)`;
* :mod:`spinv.generative.reconstruct` -- alternating / joint minimisation over :math:`(u,z)`
  for MRI, with the k-space-diagonal :math:`u`-step;
* :mod:`spinv.generative.train` -- the ELBO of :class:`spinv.nn.vae.GaussianVAE`, its stages and
  augmented training slices (the training itself runs on the engine: :mod:`spinv.training.vae`).
"""

from spinv.generative.reconstruct import (
    FourierDiagonalNormal,
    GenerativeOptions,
    GenerativeResult,
    data_fidelity,
    reconstruct_generative,
)
from spinv.generative.regularisers import (
    REGULARISER_KINDS,
    CovarianceRegulariser,
    GenerativeRegulariser,
    LinearGaussianGenerator,
    MeanOnlyRegulariser,
    RangeConstraint,
    make_regulariser,
)
from spinv.generative.train import STAGES, SliceSampler, TrainSettings, elbo_terms

__all__ = [
    "REGULARISER_KINDS",
    "STAGES",
    "SliceSampler",
    "TrainSettings",
    "CovarianceRegulariser",
    "FourierDiagonalNormal",
    "GenerativeOptions",
    "GenerativeRegulariser",
    "GenerativeResult",
    "LinearGaussianGenerator",
    "MeanOnlyRegulariser",
    "RangeConstraint",
    "data_fidelity",
    "elbo_terms",
    "make_regulariser",
    "reconstruct_generative",
]
