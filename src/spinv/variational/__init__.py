"""Variational regularisation: regularisers, solvers and reconstruction recipes (thesis ch. 1).

* :mod:`~spinv.variational.differences` -- finite-difference gradient and divergence;
* :mod:`~spinv.variational.rho` -- the :math:`C^2` Huber-type :math:`\\rho_\\gamma` (§1.2.1);
* :mod:`~spinv.variational.wavelets` -- orthogonal periodised 2-D DWT;
* :mod:`~spinv.variational.regularisers` -- smoothed TV, wavelet, H1 (:math:`\\alpha Q(Au)`);
* :mod:`~spinv.variational.tv` -- isotropic TV (forward / D4-symmetric), directional TV;
* :mod:`~spinv.variational.tgv` -- TGV\\ :sup:`2`;
* :mod:`~spinv.variational.solvers` -- PGD/FISTA, PDHG (Algorithm 1), Newton-CG (Algorithm 2);
* :mod:`~spinv.variational.reconstruct` -- CT/MRI recipes, alpha tuning, TV-PDHG iterates.
"""

from spinv.variational.differences import divergence, gradient, gradient_adjoint
from spinv.variational.reconstruct import (
    VariationalOptions,
    make_regulariser,
    reconstruct_variational,
    tune_alpha,
    tv_pdhg_iterates,
)
from spinv.variational.regularisers import (
    Regulariser,
    RegulariserBase,
    SmoothRegulariser,
    h1,
    smoothed_tv,
    wavelet_regulariser,
)
from spinv.variational.rho import HuberRho, QuadraticRho, Rho, rho_gamma
from spinv.variational.solvers import (
    FISTAOptions,
    History,
    PDHGOptions,
    fista,
    newton_cg,
    pdhg,
    pgd,
)
from spinv.variational.tgv import TGV
from spinv.variational.tv import TV, DirectionalTV
from spinv.variational.wavelets import WaveletTransform

__all__ = [
    "gradient",
    "gradient_adjoint",
    "divergence",
    "Rho",
    "HuberRho",
    "QuadraticRho",
    "rho_gamma",
    "WaveletTransform",
    "RegulariserBase",
    "Regulariser",
    "SmoothRegulariser",
    "smoothed_tv",
    "wavelet_regulariser",
    "h1",
    "TV",
    "DirectionalTV",
    "TGV",
    "History",
    "FISTAOptions",
    "PDHGOptions",
    "fista",
    "pgd",
    "pdhg",
    "newton_cg",
    "make_regulariser",
    "VariationalOptions",
    "reconstruct_variational",
    "tune_alpha",
    "tv_pdhg_iterates",
]
