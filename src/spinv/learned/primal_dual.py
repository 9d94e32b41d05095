"""Learned primal-dual reconstruction (Adler & Öktem 2018) with equivariant primal blocks.

Unrolled primal-dual hybrid gradient with learned updates, for data :math:`y` and operator
:math:`A`. With the normalised operator :math:`\\hat A = A/\\|A\\|` and data
:math:`\\hat y = y/\\|A\\|`, a primal state :math:`f` (``n_primal`` images) and a dual state
:math:`h` (``n_dual`` measurement-space arrays), both starting at 0:

.. math:: h \\leftarrow h + \\Gamma_i\\big(h, \\hat A f^{(1)}, \\hat y\\big), \\qquad
          f \\leftarrow f + \\Lambda_i\\big(f, \\hat A^* h^{(1)}\\big), \\qquad i = 1..\\mathrm{it},

and the reconstruction is :math:`f^{(1)}`. :math:`\\Gamma_i`, :math:`\\Lambda_i` are three-layer
CNNs (3x3 convolutions, PReLU with one shared slope, ``width`` channels), separate per iteration.

Equivariance (thesis §2.6): when the regulariser :math:`J` is invariant, :math:`\\mathrm{prox}_J`
is equivariant (Prop. 2.4.1) and so is :math:`\\mathrm{prox}_{J^*}`; the thesis suggests modelling
both proximal maps as equivariant networks when the data term has matching invariances. Here the
primal updates :math:`\\Lambda_i` act on images, where rotations act, and are equivariant for
``group != None`` (lift → group conv → projection; a pointwise PReLU is equivariant on regular
fields, Lemma 2.3.2). The dual updates :math:`\\Gamma_i` act on sinograms / k-space, whose grids
carry no rotation action in general (a rotation of the image is a cyclic shift of the sinogram
only for angles commensurate with the angular sampling, and the Cartesian k-space mask of
§2.5.1 is not rotation invariant), so they are ordinary CNNs.

Complex data (MRI) are handled as two real channels per complex channel; the primal state then
holds ``n_primal`` complex images (``2 n_primal`` real channels) and the dual state ``n_dual``
complex arrays. ``model(y)`` returns ``(B, 1, H, W)`` float32 (real operator) or complex64.
Under ``torch.autocast`` only the networks run in low precision; the operator calls do not
(:func:`~spinv.nn.cnn_blocks.physics_precision`).

>>> import torch
>>> from spinv.operators import Identity
>>> model = LearnedPrimalDual(Identity(), group="C4", iterations=2, width=8, seed=0)
>>> y = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
>>> model(y).shape
torch.Size([2, 1, 12, 12])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spinv.nn.cnn_blocks import (
    ImageChannels,
    conv_layer,
    estimate_step_size,
    export_model,
    fields_for_width,
    make_generator,
    physics_precision,
)
from spinv.nn.groups import parse_group
from spinv.operators.base import LinearOperator


class _UpdateBlock(nn.Module):
    """``conv -> PReLU -> conv -> PReLU -> conv`` (ordinary, or lift/group/project for a group)."""

    def __init__(self, in_channels, out_channels, group, width, kernel_size, generator) -> None:
        super().__init__()
        group = parse_group(group)
        hidden = fields_for_width(width, group) * (group.order if group else 1)
        self.convs = nn.ModuleList(
            [
                conv_layer("lift", in_channels, hidden, group, kernel_size, generator=generator),
                conv_layer("hidden", hidden, hidden, group, kernel_size, generator=generator),
                conv_layer(
                    "project", hidden, out_channels, group, kernel_size, generator=generator
                ),
            ]
        )
        self.acts = nn.ModuleList([nn.PReLU(1), nn.PReLU(1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.acts[0](self.convs[0](x))
        x = self.acts[1](self.convs[1](x))
        return self.convs[2](x)


class LearnedPrimalDual(nn.Module):
    """Learned primal-dual for ``operator`` with (optionally) equivariant primal blocks.

    Parameters: ``group`` (``None``, ``"C4"``, ``"C8"``, ``"D4"``, ...), ``iterations`` (10),
    ``n_primal``/``n_dual`` (5 each: number of primal/dual images in the states), ``width`` (32:
    ordinary channels of the hidden layers; regular fields for a group are matched as in
    :func:`~spinv.nn.cnn_blocks.fields_for_width`), ``kernel_size`` (3), ``seed``.
    """

    def __init__(
        self,
        operator: LinearOperator,
        group: str | None = None,
        iterations: int = 10,
        n_primal: int = 5,
        n_dual: int = 5,
        width: int = 32,
        kernel_size: int = 3,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(operator, nn.Module) or not hasattr(operator, "adjoint"):
            raise TypeError(
                f"operator={operator!r}: expected a spinv LinearOperator with forward/adjoint"
            )
        for name, value in (("iterations", iterations), ("n_primal", n_primal), ("n_dual", n_dual)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        self.operator = operator
        self.group = parse_group(group)
        self.iterations, self.n_primal, self.n_dual, self.width = (
            iterations,
            n_primal,
            n_dual,
            width,
        )
        self.images = ImageChannels(operator)
        c = self.images.channels  # real channels per image (1 CT, 2 MRI)
        # measurements are complex exactly when images are (CT real, MRI complex), with one
        # channel per receive coil for multi-coil MRI (MultiCoilFourier.n_coils)
        d = self.data_channels = c * int(getattr(operator, "n_coils", 1))
        gen = make_generator(seed)
        self.primal = nn.ModuleList(
            _UpdateBlock(c * (n_primal + 1), c * n_primal, self.group, width, kernel_size, gen)
            for _ in range(iterations)
        )
        self.dual = nn.ModuleList(
            _UpdateBlock(d * (n_dual + 2), d * n_dual, None, width, kernel_size, gen)
            for _ in range(iterations)
        )
        self.register_buffer("step_size", torch.tensor(math.nan))  # 1/|A|^2
        estimate_step_size(self, shape=None)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        A = self.operator
        if torch.isnan(self.step_size):
            estimate_step_size(self, shape=tuple(A.adjoint(y).shape))
        to_real, to_image = self.images.to_real, self.images.to_image
        c = self.images.channels
        scale = self.step_size.sqrt().to(ImageChannels.real_dtype(y))  # 1/|A|
        y_hat = to_real(y) * scale
        b, _, hy, wy = y_hat.shape
        d = self.data_channels
        h = y_hat.new_zeros(b, d * self.n_dual, hy, wy)
        f = None
        for primal, dual in zip(self.primal, self.dual, strict=True):
            if f is None:  # f = 0, so A f^(1) = 0; the image shape comes from the first adjoint
                a_f = torch.zeros_like(y_hat)
            else:
                with physics_precision(y):
                    a_f = to_real(A(to_image(f[:, :c].contiguous()))) * scale
            h = h + dual(torch.cat([h, a_f, y_hat], dim=1))
            with physics_precision(y):
                at_h = to_real(A.adjoint(to_image(h[:, :d].contiguous()))) * scale
            if f is None:
                f = at_h.new_zeros(b, c * self.n_primal, *at_h.shape[-2:])
            f = f + primal(torch.cat([f, at_h], dim=1))
        return to_image(f[:, :c])

    def export(self) -> LearnedPrimalDual:
        """An equivalent model with plain ``nn.Conv2d`` primal blocks (shares the operator)."""
        return export_model(self)

    def extra_repr(self) -> str:
        group = self.group.name if self.group else None
        return f"group={group}, width={self.width}, iterations={self.iterations}"
