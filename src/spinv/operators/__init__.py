"""Forward models (physics): CT, MRI and the identity, with exact adjoints, and noise models.

Every operator follows :class:`spinv.operators.base.LinearOperator`.
"""

from spinv.operators.base import Identity, LinearOperator, inner
from spinv.operators.noise import (
    complex_gaussian_noise,
    default_mu,
    gaussian_noise,
    make_generator,
    poisson_post_log,
)

__all__ = [
    "Identity",
    "LinearOperator",
    "inner",
    "complex_gaussian_noise",
    "default_mu",
    "gaussian_noise",
    "make_generator",
    "poisson_post_log",
]

try:  # filled in as the physics modules land
    from spinv.operators.mri import (  # noqa: F401
        SubsampledFourier,
        channels_to_complex,
        complex_to_channels,
    )

    __all__ += ["SubsampledFourier", "complex_to_channels", "channels_to_complex"]
except ImportError:  # pragma: no cover
    pass
try:
    from spinv.operators.mri_multicoil import MultiCoilFourier  # noqa: F401

    __all__ += ["MultiCoilFourier"]
except ImportError:  # pragma: no cover
    pass
try:
    from spinv.operators.ct import ParallelBeamCT, simulate_ct  # noqa: F401

    __all__ += ["ParallelBeamCT", "simulate_ct"]
except ImportError:  # pragma: no cover
    pass
try:
    from spinv.operators.ct_fan import FanBeamCT  # noqa: F401

    __all__ += ["FanBeamCT"]
except ImportError:  # pragma: no cover
    pass
