"""The MRI data term as a PDHG block with the thesis' splitting (§1.2.3, Eq. 1.11).

For :math:`F_1(v)=\\tfrac12\\|SFv-y\\|^2` (``y`` the measured, masked, centred k-space data of
:class:`~spinv.operators.mri.SubsampledFourier`) the thesis uses :math:`K_1 = I` and the
closed-form prox (Eq. 1.11)

.. math:: \\operatorname{prox}_{tF_1}(v) = F^{-1}(I+tS^2)^{-1}(Fv + tSy),

so by Moreau
:math:`\\operatorname{prox}_{\\sigma F_1^*}(q)=q-F^{-1}\\big[(Fq+Sy)/(1+S^2/\\sigma)\\big]`:
two FFTs per iteration and no operator application in :math:`K`. Everything is done in
uncentred k-space (mask and data are ``ifftshift``-ed once), which is the same problem since
the shifts are permutations. ``smoothness`` is :math:`\\max_i s_i^2` (Appendix 1.C.2) and
:math:`\\|K_1\\|=1`.

>>> import torch
>>> from spinv.operators.mri import SubsampledFourier
>>> from spinv.operators.base import Identity
>>> mask = (torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
>>> A = SubsampledFourier(mask)
>>> x = torch.randn(1, 1, 8, 8, dtype=torch.complex64)
>>> blk = FourierDataBlock(A.mask, A(x))
>>> float(blk.value(x)) < 1e-10
True
"""

from __future__ import annotations

import torch

from spinv.linalg import squared_norm
from spinv.variational.solvers.pdhg import DualBlock

Tensor = torch.Tensor


class FourierDataBlock(DualBlock):
    """:math:`F_1(v)=\\tfrac12\\|SFv - y\\|^2` with :math:`K_1=I` (see the module docstring).

    ``mask`` is the ``(H, W)`` weight array with DC at the centre (the ``SubsampledFourier``
    convention) and ``y`` the centred k-space data ``(B, C, H, W)``.
    """

    op_norm = 1.0

    def __init__(self, mask: Tensor, y: Tensor) -> None:
        if not isinstance(mask, Tensor) or mask.dim() != 2:
            raise ValueError(f"mask: expected an (H, W) tensor, got {getattr(mask, 'shape', mask)}")
        if not isinstance(y, Tensor) or tuple(y.shape[-2:]) != tuple(mask.shape):
            raise ValueError(
                f"y.shape={tuple(getattr(y, 'shape', ()))}: expected (..., {mask.shape[0]}, "
                f"{mask.shape[1]}) to match the mask"
            )
        if not y.is_complex():
            y = y.to(torch.complex128 if y.dtype == torch.float64 else torch.complex64)
        real = y.real.dtype
        s = torch.fft.ifftshift(mask.detach().to(device=y.device, dtype=real), dim=(-2, -1))
        self.s = s
        self.s2 = s * s
        self.sy = s * torch.fft.ifftshift(y, dim=(-2, -1))  # S y, uncentred
        self.y = torch.fft.ifftshift(y, dim=(-2, -1))
        self.smoothness = float(self.s2.max())
        self._sigma = None
        self._scale = None

    def op(self, x: Tensor) -> Tensor:
        return x

    def op_adjoint(self, q: Tensor) -> Tensor:
        return q

    def dual_prox(self, q: Tensor, sigma: float) -> Tensor:
        if sigma != self._sigma:
            self._scale = 1.0 / (1.0 + self.s2 / sigma)
            self._sigma = sigma
        k = torch.fft.fft2(q, norm="ortho").add_(self.sy).mul_(self._scale)
        return q - torch.fft.ifft2(k, norm="ortho")

    def value(self, z: Tensor) -> Tensor:
        return 0.5 * squared_norm(self.s * torch.fft.fft2(z, norm="ortho") - self.y)
