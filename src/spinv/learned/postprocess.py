"""The end-to-end baseline ``postprocess-cnn``: a learned post-processing of an analytic
reconstruction,

.. math:: \\Phi_\\theta(y) = u_0(y) + \\mathrm{CNN}_\\theta(u_0(y)),

where :math:`u_0` is the filtered back-projection ``operator.fbp(y)`` when the operator has one
(CT), and the adjoint :math:`A^*y` otherwise (the zero-filling reconstruction
:math:`F^{-1}S^*y` for MRI, Figure 2.6 of the thesis; the noisy image itself for denoising).
Complex images (MRI) enter the CNN as two real channels (real and imaginary part, Section
2.5.1) and leave it as ``complex64`` with ``C = 1``. The last convolution is initialised to zero,
so an untrained model is exactly :math:`u_0` (cf. the zero initialisation of
:math:`K_{\\mathrm{intermediate}}` in Section 2.5.2); the nonlinearity is the leaky ReLU with
slope 0.01 used there.

>>> import torch
>>> from spinv.operators import Identity
>>> model = PostProcessCNN(Identity(), width=8, depth=3)
>>> y = torch.rand(2, 1, 16, 16)
>>> bool(torch.equal(model(y), y))  # zero-initialised residual: starts as the identity
True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PostProcessCNN"]


def _to_channels(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.real, x.imag], dim=1) if x.is_complex() else x


def _from_channels(x: torch.Tensor, complex_out: bool) -> torch.Tensor:
    if not complex_out:
        return x
    c = x.shape[1] // 2
    return torch.complex(x[:, :c], x[:, c:])


class PostProcessCNN(nn.Module):
    """Residual CNN applied to an initial reconstruction (see the module docstring).

    Parameters: ``operator`` (the forward model), ``channels`` (real image channels; 1),
    ``width`` (hidden channels), ``depth`` (number of 3x3 convolutions, >= 2), ``init``
    (``"fbp"``: use ``operator.fbp`` if available, else the adjoint; ``"adjoint"``),
    ``zero_init`` (zero the last convolution so the untrained model is ``u_0``).
    """

    def __init__(
        self,
        operator,
        channels: int = 1,
        width: int = 16,
        depth: int = 3,
        init: str = "fbp",
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        for pname, val, lo in (("channels", channels, 1), ("width", width, 1), ("depth", depth, 2)):
            if isinstance(val, bool) or not isinstance(val, int) or val < lo:
                raise ValueError(f"model.{pname}={val!r}: expected an integer >= {lo}")
        if init not in ("fbp", "adjoint"):
            raise ValueError(f"model.init={init!r}: expected 'fbp' or 'adjoint'")
        if not isinstance(zero_init, bool):
            raise ValueError(f"model.zero_init={zero_init!r}: expected true or false")
        self.operator = operator
        self.init = init
        dtype = getattr(operator, "domain_dtype", torch.float32)
        self.complex_out = bool(dtype.is_complex)
        cin = 2 * channels if self.complex_out else channels
        layers: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1), nn.LeakyReLU(0.01)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.01)]
        last = nn.Conv2d(width, cin, 3, padding=1)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def initial(self, y: torch.Tensor) -> torch.Tensor:
        """The analytic reconstruction :math:`u_0(y)` (FBP or adjoint)."""
        if self.init == "fbp" and hasattr(self.operator, "fbp"):
            return self.operator.fbp(y)
        return self.operator.adjoint(y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        u0 = self.initial(y)
        z = _to_channels(u0)
        out = z + self.net(z)
        return _from_channels(out, self.complex_out)
