"""Regularisation with generative models (talk 002, Duff et al. 2023; Bora et al. 2017).

* :mod:`spinv.generative.regularisers` -- mean-only, covariance and range-constraint
  regularisers :math:`R(u)=\\inf_z E(u,z)`;
* :mod:`spinv.generative.reconstruct` -- alternating / joint minimisation over :math:`(u,z)`
  for MRI, with the k-space-diagonal :math:`u`-step;
* :mod:`spinv.generative.train` -- ELBO training of :class:`spinv.nn.vae.GaussianVAE`.
"""

from spinv.generative.reconstruct import (
    FourierDiagonalNormal,
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

__all__ = [
    "REGULARISER_KINDS",
    "CovarianceRegulariser",
    "FourierDiagonalNormal",
    "GenerativeRegulariser",
    "GenerativeResult",
    "LinearGaussianGenerator",
    "MeanOnlyRegulariser",
    "RangeConstraint",
    "data_fidelity",
    "make_regulariser",
    "reconstruct_generative",
]

try:  # training needs the data package only at call time
    from spinv.generative.train import (  # noqa: F401
        TrainSettings,
        elbo_terms,
        load_vae,
        save_vae,
        train_vae,
    )

    __all__ += ["TrainSettings", "elbo_terms", "load_vae", "save_vae", "train_vae"]
except ImportError:  # pragma: no cover - while train.py is being written
    pass
