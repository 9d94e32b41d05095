"""Options of :class:`spinv.nn.nonexpansive.NonexpansiveDenoiser` (thesis §3.3.2): how the
network is built (:class:`DenoiserStructure`) and how its Lipschitz bound is controlled and
certified (:class:`Certification`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Certification", "DenoiserStructure"]


@dataclass(frozen=True)
class DenoiserStructure:
    r"""How :math:`\Xi` and the lifting are built (§3.3.2): ``alpha``/``averaging`` (see
    :class:`NonexpansiveResNet`), ``tied`` (:math:`A_{project} = A_{lift}^T`), ``activation``
    (``"relu"`` or ``"leaky_relu"``) and ``kernel_size``."""

    alpha: float | None = None
    averaging: str = "relaxation"
    tied: bool = False
    activation: str = "relu"
    kernel_size: int = 3


@dataclass(frozen=True)
class Certification:
    """How the Lipschitz bound is controlled: ``certify_size`` (``None``: bounds valid for every
    image size; ``(H, W)``: valid up to that size, tighter), ``certify_grid`` (DFT grid of the
    size-independent bound), ``power_size`` (image size of the warm-started power iteration),
    ``norm_control`` (``"certified"``: rescale by the certified bound, default; ``"power"``: the
    thesis' rule, rescale by the power-iteration estimate only -- kept for comparison)."""

    certify_size: tuple[int, int] | None = None
    certify_grid: int = 16
    power_size: tuple[int, int] = (32, 32)
    norm_control: str = "certified"
