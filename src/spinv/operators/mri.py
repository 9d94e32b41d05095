"""Subsampled (weighted) Fourier operator for MRI, with centred k-space.

Measurement model (thesis §1.2.1 and §2.5.1, "FastMRI"): an image :math:`u\\in\\mathbb C^n`
is measured as

.. math:: y = S\\,F u \\;(+\\,\\text{noise}),

where :math:`F` is the orthonormal 2-D discrete Fourier transform and
:math:`S=\\operatorname{diag}(s_1,\\dots,s_n)` holds sampling weights :math:`s_i\\in[0,1]`
(0: not measured, 1: measured; intermediate values weight a measurement, which is how the
bilevel learning of chapter 1 relaxes the binary pattern). Since :math:`S` is real and
:math:`F` unitary, the adjoint is :math:`A^* y = F^{-1} S y`, and :math:`A^*` applied to data is
the *zero-filled* reconstruction :math:`F^{-1}(S^*y)` of Figure 2.6.

k-space convention (**centred**): the mask and the returned k-space arrays have the
zero frequency (DC) at index ``(H // 2, W // 2)``, i.e. the layout of
``torch.fft.fftshift(torch.fft.fft2(u))`` -- what one expects when looking at a mask. The
implementation is ``y = S * fftshift(fft2(u, norm="ortho"))`` and
``u = ifft2(ifftshift(S * y), norm="ortho")``; both shifts are permutations, so the adjoint is
exact and :math:`\\|A\\| = \\max_i s_i`.

Complex images are ``(B, 1, H, W)`` complex64 (complex128 in float64 work); real images are
promoted to complex. :func:`complex_to_channels` / :func:`channels_to_complex` convert to and
from the two-real-channel representation used by networks (thesis §2.5.1).

>>> import torch
>>> from spinv.operators.mri import SubsampledFourier
>>> mask = torch.zeros(8, 8); mask[:, 2:6] = 1.0
>>> A = SubsampledFourier(mask)
>>> y = A(torch.ones(1, 1, 8, 8))
>>> y.shape, y.dtype
(torch.Size([1, 1, 8, 8]), torch.complex64)
>>> round(float(y[0, 0, 4, 4].real), 4)   # DC of a constant image sits at the centre: 8 = sqrt(64)
8.0
>>> A.adjoint_test((2, 1, 8, 8)) < 1e-6
True
"""

from __future__ import annotations

import numpy as np
import torch

from spinv.operators.base import LinearOperator

__all__ = ["SubsampledFourier", "complex_to_channels", "channels_to_complex", "as_mask"]


def as_mask(mask, name: str = "mask") -> torch.Tensor:
    """Validate a sampling mask and return it as a floating tensor of shape ``(H, W)``.

    Accepts a torch tensor or numpy array of shape ``(H, W)`` (or ``(1, 1, H, W)`` /
    ``(1, H, W)``), with finite values in ``[0, 1]``. Boolean masks become 0/1. Tensors keep
    their autograd history (learned weights stay differentiable) and their floating dtype;
    everything else becomes float32.
    """
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(mask).__name__}")
    if mask.is_complex():
        raise TypeError(f"{name} must be real-valued (weights in [0, 1]), got dtype {mask.dtype}")
    while mask.ndim > 2 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(
            f"{name} must have shape (H, W) (leading singleton axes allowed), got shape "
            f"{tuple(mask.shape)}"
        )
    if mask.shape[0] < 1 or mask.shape[1] < 1:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(mask.shape)}")
    if not mask.is_floating_point():
        mask = mask.to(torch.float32)
    with torch.no_grad():
        if not bool(torch.isfinite(mask).all()):
            raise ValueError(f"{name} must be finite; it contains NaN or inf")
        lo, hi = float(mask.min()), float(mask.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return mask


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` complex -> ``(B, 2, H, W)`` real (channel 0 real part, 1 imaginary).

    >>> import torch
    >>> z = torch.complex(torch.ones(1, 1, 2, 2), -torch.ones(1, 1, 2, 2))
    >>> complex_to_channels(z)[0, :, 0, 0].tolist()
    [1.0, -1.0]
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x must have shape (B, 1, H, W), got {tuple(x.shape)}")
    if not x.is_complex():
        x = x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    return torch.cat([x.real, x.imag], dim=1)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` real -> ``(B, 1, H, W)`` complex; inverse of :func:`complex_to_channels`.

    >>> import torch
    >>> x = torch.randn(3, 2, 4, 5)
    >>> bool(torch.equal(complex_to_channels(channels_to_complex(x)), x))
    True
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"x must be real with 2 channels, got complex dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (B, 2, H, W), got {tuple(x.shape)}")
    return torch.complex(x[:, 0:1], x[:, 1:2])


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


class SubsampledFourier(LinearOperator):
    """Weighted, subsampled orthonormal 2-D Fourier transform :math:`A = S F` (thesis §1.2.1).

    Parameters
    ----------
    mask:
        Sampling weights :math:`S` of shape ``(H, W)`` with values in ``[0, 1]``, **DC at the
        centre** (index ``(H // 2, W // 2)``); broadcast over batch and channel. Stored as the
        buffer ``mask`` (moves with ``.to(device)``, not saved in ``state_dict``); a tensor that
        requires grad stays differentiable, so sampling weights can be learned.
    noise_sigma:
        Optional default noise level used by :meth:`measure` (see
        :func:`spinv.operators.noise.complex_gaussian_noise` for the convention).

    Inputs are ``(B, 1, H, W)`` (any ``C`` works, the mask is broadcast); real inputs are
    promoted to complex64 (float64 -> complex128). Outputs of :meth:`forward` are centred
    k-space arrays of the same shape, zero wherever ``mask == 0``.
    """

    domain_dtype = torch.complex64

    def __init__(self, mask, noise_sigma: float | None = None) -> None:
        super().__init__()
        mask = as_mask(mask, "mask")
        if noise_sigma is not None:
            noise_sigma = float(noise_sigma)
            if not np.isfinite(noise_sigma) or noise_sigma < 0:
                raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma}")
        self.noise_sigma = noise_sigma
        self.register_buffer("mask", mask, persistent=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Image (and k-space) size ``(H, W)``."""
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """Default input shape ``(1, 1, H, W)`` (used by :meth:`norm` without arguments)."""
        return (1, 1, *self.shape)

    @property
    def sampling_rate(self) -> float:
        """Fraction of sampled k-space locations, :math:`\\#\\{s_i>0\\}/n`."""
        return float((self.mask > 0).float().mean())

    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"{name} must have shape (B, C, {self.shape[0]}, {self.shape[1]}) to match the "
                f"mask, got {tuple(x.shape)}"
            )

    def _weights(self, like: torch.Tensor) -> torch.Tensor:
        real = torch.float64 if like.dtype == torch.complex128 else torch.float32
        return self.mask.to(device=like.device, dtype=real)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`y = S\\,\\mathrm{fftshift}(F x)` with orthonormal FFT; centred k-space."""
        self._check(x, "x")
        x = x.to(_complex_dtype(x.dtype))
        k = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
        return k * self._weights(k)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`x = F^{-1}\\,\\mathrm{ifftshift}(S y)`; the zero-filled reconstruction."""
        self._check(y, "y")
        y = y.to(_complex_dtype(y.dtype))
        k = torch.fft.ifftshift(y * self._weights(y), dim=(-2, -1))
        return torch.fft.ifft2(k, norm="ortho")

    def zero_filled(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled reconstruction :math:`F^{-1}(S^* y)` (thesis Fig. 2.6), i.e. the adjoint."""
        return self.adjoint(y)

    analytic_name = "zero-filled"

    def analytic(self, y: torch.Tensor) -> torch.Tensor:
        """The analytic reconstruction of MRI data: zero filling :math:`F^{-1}S^*y`, which is
        the adjoint :math:`A^*y` (so the base-class default, named ``"zero-filled"``)."""
        return self.adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`A^*A x = F^{-1} S^2 F x`, computed without the two shifts."""
        self._check(x, "x")
        x = x.to(_complex_dtype(x.dtype))
        w = torch.fft.ifftshift(self._weights(x), dim=(-2, -1))
        return torch.fft.ifft2(torch.fft.fft2(x, norm="ortho") * w.pow(2), norm="ortho")

    def measure(
        self,
        x: torch.Tensor,
        sigma: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Simulated data :math:`y = S(Fx + \\eta)` (thesis §1.2.1), :math:`\\eta` complex white
        Gaussian with level ``sigma`` (default ``noise_sigma``, 0 if unset)."""
        from spinv.operators.noise import complex_gaussian_noise

        y = self.forward(x)
        sigma = self.noise_sigma if sigma is None else sigma
        if sigma is None or float(sigma) == 0.0:
            return y
        return complex_gaussian_noise(
            y, sigma, mask=self.mask, seed=seed, generator=generator
        )

    def extra_repr(self) -> str:
        return f"shape={self.shape}, sampling_rate={self.sampling_rate:.4f}"
