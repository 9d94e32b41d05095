"""spinv: structure-preserving machine learning for imaging inverse problems (CT and MRI).

Subpackages follow the concepts of F. Sherry's thesis (``shared/seeds``):
``operators`` (physics, with ``operators.sampling``), ``problems``, ``data``, ``metrics``,
``linalg``, ``variational``, ``bilevel`` (ch. 1), ``nn.equivariant`` and ``learned`` (ch. 2),
``nn.nonexpansive`` and ``learned.pnp`` (ch. 3), ``generative`` (talk 002), ``training``,
``reconstruction``, ``zoo``, ``experiments``, ``report`` and the ``spinv`` command line
(``ARCHITECTURE.md`` has the layers).

The most used names are available from the top level; they (and the subpackages) are imported
on first use, so ``import spinv`` stays cheap.

>>> import torch, spinv
>>> spinv.ParallelBeamCT is spinv.operators.ParallelBeamCT
True
>>> x = torch.full((1, 1, 8, 8), 0.5)
>>> float(spinv.ssim(x, x)[0])
1.0
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "atomic", "bilevel", "data", "experiments", "generative", "learned", "linalg", "metrics",
    "nn", "operators", "problems", "reconstruction", "report", "training", "variational", "zoo",
)

_NAMES = {
    "ParallelBeamCT": "spinv.operators",
    "SubsampledFourier": "spinv.operators",
    "Identity": "spinv.operators",
    "LinearOperator": "spinv.operators",
    "load_dataset": "spinv.data",
    "psnr": "spinv.metrics",
    "ssim": "spinv.metrics",
    "reconstruct_variational": "spinv.variational.reconstruct",
    "VariationalOptions": "spinv.variational.reconstruct",
    "Problem": "spinv.problems",
    "reconstruct": "spinv.reconstruction",
    "ReconstructionOptions": "spinv.reconstruction",
    "tune_alpha": "spinv.variational.reconstruct",
    "LearnedProximalGradient": "spinv.learned",
    "LearnedPrimalDual": "spinv.learned",
    "NonexpansiveDenoiser": "spinv.nn.nonexpansive",
    "check_gradient": "spinv.bilevel",
}

__all__ = ["__version__", *_SUBMODULES, *_NAMES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"spinv.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'spinv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
