"""Forward models (physics): CT, MRI and the identity, with exact adjoints.

Every operator follows :class:`spinv.operators.base.LinearOperator`.
"""

from spinv.operators.base import Identity, LinearOperator, inner

__all__ = ["Identity", "LinearOperator", "inner"]

try:  # filled in as the physics modules land
    from spinv.operators.mri import SubsampledFourier, complex_to_channels, channels_to_complex  # noqa: F401

    __all__ += ["SubsampledFourier", "complex_to_channels", "channels_to_complex"]
except ImportError:  # pragma: no cover
    pass
try:
    from spinv.operators.ct import ParallelBeamCT  # noqa: F401

    __all__ += ["ParallelBeamCT"]
except ImportError:  # pragma: no cover
    pass
