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
