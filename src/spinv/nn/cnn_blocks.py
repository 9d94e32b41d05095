"""Building blocks shared by the learned reconstruction methods (thesis §2.4.2, §2.5.2).

* :func:`conv_layer`: one ``"lift"``/``"hidden"``/``"project"`` convolution, ordinary
  (``group=None``, an ``nn.Conv2d`` with He initialisation) or equivariant
  (:class:`~spinv.nn.equivariant.LiftingConv`, :class:`~spinv.nn.equivariant.GroupConv`,
  :class:`~spinv.nn.equivariant.ProjectionConv` with generalised He initialisation).
* :func:`fields_for_width`: the number of regular fields giving an ordinary width
  :math:`|H|\\cdot n_{\\mathrm{channels}}` as close as possible to ``width`` (§2.5.2 matches the
  widths of the underlying ordinary convolutions; 96 is divisible by 1, 2, 3, 4, 6, 8, 12, 16, so
  C4 uses 24 fields and C8 12; e.g. C5 rounds 96/5 to 19 fields = 95 channels).
* :class:`ProximalBlock`: the learned proximal operator of Eq. (2.12),
  :math:`K_{\\mathrm{project}} \\circ (\\mathrm{id} + \\phi\\circ K_{\\mathrm{intermediate}})
  \\circ K_{\\mathrm{lift}}` with :math:`K_{\\mathrm{intermediate}}` initialised to zero.
* :class:`ImageChannels`, :func:`estimate_step_size`, :func:`export_model`,
  :func:`make_generator`, :func:`physics_precision`: plumbing shared by the unrolled methods
  of :mod:`spinv.learned`.
* :func:`complex_to_real` / :func:`real_to_complex`: complex images with ``C`` channels as ``2C``
  real channels (real, imaginary interleaved; for ``C = 1`` the same layout as
  :func:`spinv.operators.complex_to_channels`). Real and imaginary parts are scalar fields, so
  they transform trivially under rotations.

>>> import torch
>>> block = ProximalBlock(7, 6, group="C4", width=96)
>>> block.lift.out_channels, block(torch.zeros(1, 7, 8, 8)).shape
(96, torch.Size([1, 6, 8, 8]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spinv.nn.equivariant import (
    LEAKY_RELU_GAIN,
    TORCH_DEFAULT_GAIN,
    GroupConv,
    LiftingConv,
    ProjectionConv,
    export_module,
)
from spinv.nn.groups import FiniteGroup, parse_group


def fields_for_width(width: int, group: FiniteGroup | str | None) -> int:
    """Number of regular fields (channels for ``group=None``) for an ordinary ``width``.

    >>> fields_for_width(96, "C4"), fields_for_width(96, "D4"), fields_for_width(96, "C5")
    (24, 12, 19)
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width={width!r}: expected a positive integer")
    group = parse_group(group)
    if group is None:
        return width
    return max(1, int(math.floor(width / group.order + 0.5)))


@torch.no_grad()
def he_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    gain: float = LEAKY_RELU_GAIN,
    zero: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Conv2d:
    """``nn.Conv2d`` ("same" zero padding) with He-normal weights, std ``gain/sqrt(fan_in)``."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    conv.bias.zero_()
    if zero:
        conv.weight.zero_()
    else:
        std = gain / math.sqrt(in_channels * kernel_size**2)
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
    return conv


def conv_layer(
    kind: str,
    in_channels: int,
    out_channels: int,
    group: FiniteGroup | str | None = None,
    kernel_size: int = 3,
    zero: bool = False,
    generator: torch.Generator | None = None,
    gain: float = TORCH_DEFAULT_GAIN,
) -> nn.Module:
    """One convolution of a lift/hidden/project stack.

    Channel counts are *ordinary* channels; for a group, the regular side of the layer has
    ``channels / |H|`` fields (``channels`` must be divisible by ``|H|``).

    Initialisation: normal with standard deviation ``gain / sqrt(fan_in)``, generalised to
    groups as in :mod:`spinv.nn.equivariant`. The default ``gain`` is that of PyTorch's default
    convolution initialisation, :math:`1/\\sqrt3` (§2.5.2: "He initialisation as implemented
    in PyTorch"). A ``"project"`` layer of a group also divides its standard deviation by
    :math:`\\sqrt{|H|}`: the :math:`|H|` components of a lifted field are strongly correlated
    (equal where the input is locally isotropic), so the projection sums them coherently, and
    an initialisation that assumes independent inputs makes its output about
    :math:`\\sqrt{|H|}` times larger than that of the ordinary layer of equal width.

    Measured on untrained 8-iteration CT models (32x32, width 96, 3 seeds), output RMS for a
    target of RMS ~0.3: with He gain :math:`\\sqrt2` and no correction, ordinary 7-14, C4
    300-2400, C8 1e7-2e8; with the correction, C4 2-11 but C8 still 1e3-1e5 (its 3x3
    steerable basis is dominated by isotropic functions); with the correction and the PyTorch
    gain, every model is below 0.4 (see ``tests/learned/test_lpg.py``).
    """
    group = parse_group(group)
    if kind not in ("lift", "hidden", "project"):
        raise ValueError(f"kind={kind!r}: expected 'lift', 'hidden' or 'project'")
    if group is None:
        return he_conv2d(
            in_channels, out_channels, kernel_size, gain=gain, zero=zero, generator=generator
        )
    n = group.order
    for name, value, regular in (
        ("in_channels", in_channels, kind != "lift"),
        ("out_channels", out_channels, kind != "project"),
    ):
        if regular and value % n:
            raise ValueError(f"{name}={value}: expected a multiple of |H| = {n} ({group.name})")
    opts = dict(kernel_size=kernel_size, zero_init=zero, generator=generator, gain=gain)
    if kind == "lift":
        return LiftingConv(in_channels, out_channels // n, group, **opts)
    if kind == "hidden":
        return GroupConv(in_channels // n, out_channels // n, group, **opts)
    opts["gain"] = gain / math.sqrt(n)
    return ProjectionConv(in_channels // n, out_channels, group, **opts)


class ProximalBlock(nn.Module):
    """Learned proximal operator, Eq. (2.12): ``project(z + phi(hidden(z)))`` with ``z = lift(x)``.

    ``in_channels``/``out_channels`` are scalar (trivial) channels; the intermediate features
    are ``width`` ordinary channels, i.e. ``fields_for_width(width, group)`` regular fields.
    ``phi`` is the leaky ReLU (slope ``negative_slope``, 0.01 in §2.5.2), pointwise and hence
    equivariant on regular fields (Lemma 2.3.2). The hidden convolution starts at zero, so the
    untrained block is the linear map ``project o lift``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group: FiniteGroup | str | None = None,
        width: int = 96,
        kernel_size: int = 3,
        negative_slope: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        group = parse_group(group)
        hidden = fields_for_width(width, group) * (group.order if group else 1)
        self.lift = conv_layer("lift", in_channels, hidden, group, kernel_size, generator=generator)
        self.hidden = conv_layer(
            "hidden", hidden, hidden, group, kernel_size, zero=True, generator=generator
        )
        self.project = conv_layer(
            "project", hidden, out_channels, group, kernel_size, generator=generator
        )
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lift(x)
        return self.project(z + self.act(self.hidden(z)))


def complex_to_real(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` complex → ``(B, 2C, H, W)`` real, channels ``re_0, im_0, re_1, ...``.

    >>> z = torch.complex(torch.ones(1, 2, 1, 1), -torch.ones(1, 2, 1, 1))
    >>> complex_to_real(z).flatten().tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    if not x.is_complex():
        raise TypeError(f"x has dtype {x.dtype}: expected a complex tensor")
    b, c, h, w = x.shape
    return torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, w)


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`complex_to_real`: ``(B, 2C, H, W)`` real → ``(B, C, H, W)`` complex.

    >>> x = torch.randn(2, 4, 3, 3)
    >>> torch.equal(complex_to_real(real_to_complex(x)), x)
    True
    """
    if x.is_complex() or x.dim() != 4 or x.shape[1] % 2:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and dtype {x.dtype}: expected real (B, 2C, H, W)"
        )
    b, c2, h, w = x.shape
    parts = x.reshape(b, c2 // 2, 2, h, w).permute(0, 1, 3, 4, 2).contiguous()
    return torch.view_as_complex(parts)


def physics_precision(like: torch.Tensor):
    """Context manager disabling ``torch.autocast`` on ``like``'s device, so that forward
    operators (sparse products, FFTs) run in the data's own precision inside mixed-precision
    training of the networks around them."""
    return torch.autocast(device_type=like.device.type, enabled=False)


def make_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed`` (``None``: use torch's global generator)."""
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed={seed!r}: expected an int or None")
    return torch.Generator().manual_seed(seed)


class ImageChannels:
    """Real-channel view of the images of ``operator``.

    A real operator (CT, ``Identity``) has images with 1 real channel; a complex one (MRI,
    ``domain_dtype`` complex) has complex images ``(B, 1, H, W)`` handled as 2 real channels.
    """

    def __init__(self, operator: nn.Module) -> None:
        dtype = getattr(operator, "domain_dtype", torch.float32)
        self.complex = bool(dtype.is_complex)
        self.channels = 2 if self.complex else 1

    def to_real(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            if not self.complex:
                raise ValueError(
                    f"the operator has real images but produced dtype {x.dtype}; use a complex "
                    "operator (domain_dtype complex) for complex data"
                )
            return complex_to_real(x)
        if self.complex:
            raise ValueError(f"expected a complex image from the operator, got dtype {x.dtype}")
        return x

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        return real_to_complex(x) if self.complex else x

    @staticmethod
    def real_dtype(x: torch.Tensor) -> torch.dtype:
        return x.real.dtype if x.is_complex() else x.dtype


@torch.no_grad()
def estimate_step_size(model: nn.Module, shape: tuple[int, ...] | None) -> None:
    """Fill ``model.step_size`` (a NaN buffer) with :math:`1/\\|A\\|^2` of ``model.operator``.

    :math:`\\|A\\|` comes from :meth:`~spinv.operators.base.LinearOperator.norm` (power
    iteration, fixed seed) on ``shape`` or the operator's ``image_shape``; the identity has norm
    1. Without a known shape the buffer stays NaN and the model calls this at its first forward.
    """
    from spinv.operators.base import Identity

    op = model.operator
    if isinstance(op, Identity):
        model.step_size.fill_(1.0)
        return
    shape = shape if shape is not None else getattr(op, "image_shape", None)
    if shape is None:
        return
    norm = op.norm((1, *tuple(shape)[1:]))
    if not norm > 0:
        raise ValueError(f"operator {op!r} has norm {norm}: cannot set step_size = 1/|A|^2")
    model.step_size.fill_(1.0 / norm**2)


def export_model(model: nn.Module) -> nn.Module:
    """:func:`~spinv.nn.equivariant.export_module` sharing ``model.operator`` with the copy."""
    return export_module(model, share=(model.operator,))
