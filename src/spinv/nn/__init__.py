"""spinv.nn."""

# equivariant networks (thesis ch. 2)
from spinv.nn.equivariant import (  # noqa: E402
    GroupConv,
    LiftingConv,
    NormNonlinearity,
    ProjectionConv,
    export_module,
)
from spinv.nn.groups import FiniteGroup, parse_group, transform  # noqa: E402

__all__ = [
    "FiniteGroup",
    "GroupConv",
    "LiftingConv",
    "NormNonlinearity",
    "ProjectionConv",
    "export_module",
    "parse_group",
    "transform",
]

# nonexpansive / averaged ODE networks and certificates (thesis ch. 3)
from spinv.nn.dncnn import DnCNN  # noqa: E402
from spinv.nn.nonexpansive import (  # noqa: E402
    NonexpansiveDenoiser,
    NonexpansiveResNet,
    ODELayer,
    composed_averagedness,
)
from spinv.nn.runge_kutta import (  # noqa: E402
    ButcherTableau,
    circle_contractivity_radius,
)
from spinv.nn.spectral import conv_norm_upper_bound  # noqa: E402

__all__ += [
    "ButcherTableau",
    "DnCNN",
    "NonexpansiveDenoiser",
    "NonexpansiveResNet",
    "ODELayer",
    "circle_contractivity_radius",
    "composed_averagedness",
    "conv_norm_upper_bound",
]
