"""Learned proximal gradient method, thesis Algorithm 5 with the proximal blocks of Eq. (2.12).

Starting from :math:`u_0 = 0` and a memory state :math:`s = 0` of ``memory`` scalar channels,
each of the ``iterations`` steps applies its own learned proximal block (separate weights per
iteration, as in §2.5.2) to the stack :math:`(u, s, \\tau\\nabla E_y(u))`:

.. math:: (u, s) \\leftarrow \\widehat{\\mathrm{prox}}_i(u, s, \\tau\\nabla E_y(u)), \\qquad
          \\widehat{\\mathrm{prox}}_i = K_{\\mathrm{project},i}\\circ(\\mathrm{id} + \\phi\\circ
          K_{\\mathrm{intermediate},i})\\circ K_{\\mathrm{lift},i}.

The data term is :math:`E_y(u) = \\tfrac12\\|Au - y\\|_2^2` (CT: :math:`A = R`, MRI:
:math:`A = SF`, §2.5.1) with gradient :math:`\\nabla E_y(u) = A^*(Au - y)`, computed through the
operator (Remark 2.4.2). The gradient channel is scaled by ``step_size`` :math:`\\tau`, by default
:math:`1/\\|A\\|^2` (the classical proximal-gradient step; it keeps the network inputs of order
one for CT, whose :math:`\\|R\\|^2` is in the thousands). Algorithm 5 has no such factor; a fixed
scaling of one input channel is absorbed by :math:`K_{\\mathrm{lift},i}`, so the model class is
unchanged and only the conditioning of training improves.

``group=None`` gives the *ordinary* method (translation equivariant blocks); ``"C4"``, ``"C8"``,
``"D4"``, ``"C<m>"``, ``"D<m>"`` the *equivariant* method (roto-translation equivariant blocks,
Prop. 2.4.1). Widths are matched, :math:`|H|\\cdot n_{\\mathrm{channels}} \\approx` ``width``
(see :func:`spinv.nn.cnn_blocks.fields_for_width`).

Images: for a real operator (CT, ``Identity``) ``model(y)`` returns ``(B, 1, H, W)`` float32;
for a complex operator (``domain_dtype`` complex, e.g. MRI) the image is handled as 2 real
channels (real and imaginary part, each a scalar field) and ``model(y)`` returns ``(B, 1, H, W)``
complex64. With ``operator=Identity()`` and a group that acts exactly on the grid (C2, C4, D4),
the whole model is exactly equivariant: :math:`\\nabla E_y(u) = u - y` is.

>>> import torch
>>> from spinv.operators import Identity
>>> model = LearnedProximalGradient(Identity(), group="C4", width=8, iterations=2, seed=0)
>>> y = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
>>> out = model(y)
>>> out.shape
torch.Size([1, 1, 16, 16])
>>> bool(torch.allclose(model(torch.rot90(y, 1, (2, 3))), torch.rot90(out, 1, (2, 3)), atol=1e-5))
True
>>> bool(torch.allclose(model.export()(y), out, atol=1e-5))
True
"""

from __future__ import annotations

import math
from collections import deque

import torch
from torch import nn

from spinv.nn.cnn_blocks import (
    ImageChannels,
    ProximalBlock,
    estimate_step_size,
    export_model,
    make_generator,
    physics_precision,
)
from spinv.nn.groups import parse_group
from spinv.operators.base import LinearOperator


class LearnedProximalGradient(nn.Module):
    """Algorithm 5 (learned proximal gradient) for ``operator`` :math:`A`.

    Parameters
    ----------
    operator: the forward operator (``LinearOperator``: ``A(x)``, ``A.adjoint(y)``).
    group: ``None`` (ordinary CNN blocks) or ``"C<m>"``/``"D<m>"`` (equivariant blocks).
    width: ordinary channel width of the intermediate features (96 in §2.5.2).
    iterations: number of unrolled iterations (8 in §2.5.2).
    memory: scalar channels of the memory state ``s`` (5 in §2.5.2).
    step_size: scale :math:`\\tau` of the gradient channel; ``None`` = :math:`1/\\|A\\|^2`,
        estimated once by power iteration (from ``operator.image_shape``, or at the first call).
    kernel_size, negative_slope: filter size (3) and leaky-ReLU slope (0.01).
    seed: seed of the weight initialisation (``None``: torch's global generator).
    channels_last: run the convolutions in ``torch.channels_last`` memory format (same results
        up to rounding; faster with oneDNN on CPU).

    Mixed precision: under ``torch.autocast`` the convolutions run in the autocast dtype while
    the operator (``A``, ``A^*``) and the data-term gradient stay in the precision of ``y``
    (:func:`~spinv.nn.cnn_blocks.physics_precision`).
    """

    def __init__(
        self,
        operator: LinearOperator,
        group: str | None = None,
        width: int = 96,
        iterations: int = 8,
        memory: int = 5,
        step_size: float | None = None,
        kernel_size: int = 3,
        negative_slope: float = 0.01,
        seed: int | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(operator, nn.Module) or not hasattr(operator, "adjoint"):
            raise TypeError(
                f"operator={operator!r}: expected a spinv LinearOperator with forward/adjoint"
            )
        for name, value, low in (("iterations", iterations, 1), ("memory", memory, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
        self.operator = operator
        self.group = parse_group(group)
        self.width = width
        self.iterations = iterations
        self.memory = memory
        self.channels_last = bool(channels_last)
        self.images = ImageChannels(operator)
        c = self.images.channels
        gen = make_generator(seed)
        self.blocks = nn.ModuleList(
            ProximalBlock(
                2 * c + memory,
                c + memory,
                self.group,
                width,
                kernel_size,
                negative_slope,
                generator=gen,
            )
            for _ in range(iterations)
        )
        tau = math.nan if step_size is None else float(step_size)
        if step_size is not None and not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"step_size={step_size!r}: expected a positive number or None")
        self.register_buffer("step_size", torch.tensor(tau, dtype=torch.float32))
        if step_size is None:
            estimate_step_size(self, shape=None)

    def _states(self, y: torch.Tensor, total: int, reuse: str):
        """Yield ``(u, dtype)`` after each of ``total`` iterations (``u`` as real channels).

        Iteration ``k`` (0-based) applies block ``k mod depth`` (``reuse="cycle"``) or block
        ``min(k, depth - 1)`` (``reuse="last"``); with ``total = depth`` both are Algorithm 5.
        """
        A = self.operator
        with physics_precision(y):
            aty = A.adjoint(y)
        if torch.isnan(self.step_size):
            estimate_step_size(self, shape=tuple(aty.shape))
        real = self.images.real_dtype(aty)
        tau = self.step_size.to(real)
        to_real, to_image = self.images.to_real, self.images.to_image
        c = self.images.channels
        neg_aty = -to_real(aty)
        b, _, h, w = neg_aty.shape
        u = neg_aty.new_zeros(b, c, h, w)
        s = neg_aty.new_zeros(b, self.memory, h, w)
        depth = len(self.blocks)
        for k in range(total):
            block = self.blocks[k % depth if reuse == "cycle" else min(k, depth - 1)]
            if k == 0:  # grad E_y(u_0) = A^*(A 0 - y) = -A^*y
                grad = neg_aty
            else:  # grad E_y(u) = A^*(Au - y), always in the working precision of the physics
                with physics_precision(y):
                    grad = to_real(A.normal(to_image(u.to(real).contiguous()))) + neg_aty
            x = torch.cat([u.to(real), s.to(real), tau * grad], dim=1)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = block(x)
            u, s = out[:, :c], out[:, c:]
            yield u, real

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # keep only the last state (no list of intermediate iterates)
        u, real = deque(self._states(y, len(self.blocks), "cycle"), maxlen=1)[0]
        return self.images.to_image(u.to(real).contiguous())

    def iterates(self, y: torch.Tensor, total: int, reuse: str = "cycle"):
        """Yield the images :math:`u_1, \\dots, u_{total}`, running the learned iteration past
        its depth by cycling through the blocks (``reuse="cycle"``) or repeating the last one
        (``reuse="last"``); the first ``len(blocks)`` iterates are those of :meth:`forward`."""
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise ValueError(f"total={total!r}: expected a positive integer")
        if reuse not in ("cycle", "last"):
            raise ValueError(f"reuse={reuse!r}: expected 'cycle' or 'last'")
        for u, real in self._states(y, total, reuse):
            yield self.images.to_image(u.to(real).contiguous())

    def export(self) -> LearnedProximalGradient:
        """An equivalent model whose blocks are plain ``nn.Conv2d`` (expanded filter banks).

        The copy shares the operator; its inference cost is that of the ordinary method.
        """
        return export_model(self)

    def extra_repr(self) -> str:
        group = self.group.name if self.group else None
        return f"group={group}, width={self.width}, iterations={self.iterations}"
