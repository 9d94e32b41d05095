"""DnCNN (Zhang et al. 2017), the unconstrained baseline denoiser of thesis §3.3.2.

:math:`\\Gamma_{DnCNN} = A_{project}\\circ\\Xi_{DnCNN}\\circ A_{lift}`: a ``depth``-layer plain CNN
(first layer conv + ReLU, ``depth - 2`` layers conv + batch norm + ReLU, last layer conv), no
skip connections inside, trained in the residual way (Eq. 3.6 with :math:`\\gamma=1`), so the
denoiser is :math:`y - \\Gamma_{DnCNN}(y)`. No norm constraint is enforced; the Lipschitz bound
:meth:`DnCNN.lipschitz_upper_bound` (product of per-layer certified norms, batch norm in eval mode
folded in) is typically huge, which is the point of the comparison.

Initialisation: Kaiming-normal weights, except the last convolution, which starts at zero
(``zero_last=True``), so the residual denoiser starts as the identity. Without batch
normalisation, a deep plain ReLU stack with Kaiming weights maps its input to an output of
the input's size: the first steps of training then mostly shrink that output, which can kill
the ReLUs of the last layers and leave the network stuck at :math:`\\Gamma_{DnCNN}\\equiv0`
(the identity denoiser, training loss :math:`\\sigma^2`; this happened on ``brain-t1`` at
width 16, depth 17). The zero start avoids that plateau.

>>> import torch
>>> net = DnCNN(1, width=8, depth=5, seed=0)
>>> net(torch.zeros(2, 1, 16, 16)).shape
torch.Size([2, 1, 16, 16])
"""

from __future__ import annotations

import torch
from torch import nn

from spinv.nn.spectral import conv_norm_upper_bound

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    """DnCNN with ``depth`` conv layers of ``width`` channels (20 and 64 in the thesis)."""

    def __init__(self, in_channels: int = 1, width: int = 64, depth: int = 20,
                 batch_norm: bool = True, residual: bool = True, kernel_size: int = 3,
                 zero_last: bool = True, seed: int | None = 0) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("width", width)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r}: expected a positive integer")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth={depth!r}: expected an integer >= 2")
        self.config = dict(in_channels=in_channels, width=width, depth=depth,
                           batch_norm=batch_norm, residual=residual, kernel_size=kernel_size,
                           zero_last=zero_last)
        self.residual = bool(residual)
        pad = kernel_size // 2
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            layers: list[nn.Module] = [nn.Conv2d(in_channels, width, kernel_size, padding=pad),
                                       nn.ReLU(inplace=True)]
            for _ in range(depth - 2):
                layers.append(nn.Conv2d(width, width, kernel_size, padding=pad,
                                        bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
            layers.append(nn.Conv2d(width, in_channels, kernel_size, padding=pad))
            self.body = nn.Sequential(*layers)
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            if zero_last:
                nn.init.zeros_(layers[-1].weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 4:
            raise ValueError(f"y: expected a (B, C, H, W) tensor, got shape {tuple(y.shape)}")
        out = self.body(y)
        return y - out if self.residual else out

    @torch.no_grad()
    def lipschitz_upper_bound(self, grid: int = 16) -> float:
        """Product of certified per-layer norms (eval-mode batch norm folded into its conv),
        plus 1 for the residual connection: a valid but usually very loose bound."""
        lip, pending = 1.0, None
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                if pending is not None:
                    lip *= conv_norm_upper_bound(pending, pending.shape[-1] // 2, grid=grid)
                pending = m.weight
            elif isinstance(m, nn.BatchNorm2d):
                scale = m.weight / torch.sqrt(m.running_var + m.eps)
                pending = pending * scale.view(-1, 1, 1, 1)
        lip *= conv_norm_upper_bound(pending, pending.shape[-1] // 2, grid=grid)
        return 1.0 + lip if self.residual else lip
