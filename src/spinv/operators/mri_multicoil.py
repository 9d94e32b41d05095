"""Multi-coil (SENSE) subsampled Fourier operator for parallel MRI, with centred k-space.

Measurement model (SENSE, Pruessmann et al. 1999; the multi-coil form of thesis §1.2.1): an
image :math:`u\\in\\mathbb C^n` is seen by :math:`N_c` receive coils with complex sensitivity
maps :math:`C_c` and each coil's k-space is measured on the same sampling pattern,

.. math:: y_c = S\\,F\\,(C_c u) \\;(+\\,S\\eta_c), \\qquad c = 1,\\dots,N_c,

with :math:`F` the orthonormal 2-D DFT and :math:`S=\\operatorname{diag}(s)` the sampling
weights :math:`s_i\\in[0,1]` of :class:`~spinv.operators.mri.SubsampledFourier` (the FFT
normalisation and the **centred** k-space layout -- DC at ``(H // 2, W // 2)`` -- are that
operator's: ``y_c = S * fftshift(fft2(C_c u, norm="ortho"))``). The adjoint is

.. math:: A^*y = \\sum_c \\overline{C_c}\\,F^{-1} S\\,y_c ,

and :math:`A^*A = \\sum_c \\overline{C_c} F^{-1}S^2F C_c`, so :math:`\\|A\\| \\le \\max_i s_i
\\cdot \\max_x (\\sum_c |C_c(x)|^2)^{1/2}` with equality for full sampling (then
:math:`A^*A` is multiplication by :math:`\\sum_c|C_c|^2`). With one coil of ones the operator is
:class:`~spinv.operators.mri.SubsampledFourier`.

Analytic reconstructions of the coil images :math:`x_c = F^{-1}S y_c` (zero filling):

* :meth:`MultiCoilFourier.rss`: root-sum-of-squares :math:`(\\sum_c|x_c|^2)^{1/2}`, the fastMRI
  reference (real, non-negative);
* :meth:`MultiCoilFourier.sense_combine`: :math:`\\sum_c\\overline{C_c}x_c / \\sum_c|C_c|^2`
  (0 where the maps vanish), the adjoint normalised by the coil energy (complex);
* :meth:`MultiCoilFourier.analytic` (named ``"rss"``) returns **the RSS magnitude with the phase
  of the SENSE combination**, :math:`\\mathrm{RSS}\\cdot e^{i\\arg(A^*y)}`: its magnitude is the
  RSS image, so tables and ``--method rss`` report the standard baseline, while its phase is the
  maps', so it lies in the operator's (complex) domain and is a sound warm start for iterative
  methods. For maps normalised so that :math:`\\sum_c|C_c|^2=1` (simulated birdcage maps, ESPIRiT
  maps) and full sampling, it equals :math:`u` up to the phase convention of the maps.

Inputs ``(B, 1, H, W)`` (real is promoted to complex64, float64 to complex128); outputs of
:meth:`forward` are ``(B, N_c, H, W)`` centred k-space arrays, zero wherever ``mask == 0``.

>>> import torch
>>> from spinv.operators.mri_multicoil import MultiCoilFourier
>>> maps = torch.ones(4, 8, 8, dtype=torch.complex64) / 2      # sum_c |C_c|^2 = 1
>>> A = MultiCoilFourier(torch.ones(8, 8), maps)
>>> A(torch.ones(1, 1, 8, 8)).shape
torch.Size([1, 4, 8, 8])
>>> A.adjoint_test((2, 1, 8, 8)) < 1e-6, round(A.norm(), 4), round(A.norm_bound(), 4)
(True, 1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch

from spinv.operators.base import LinearOperator
from spinv.operators.mri import _complex_dtype, as_mask

__all__ = ["MultiCoilFourier", "as_sensitivities"]


def as_sensitivities(maps, name: str = "sensitivities") -> torch.Tensor:
    """Validate coil sensitivity maps and return them as a complex tensor ``(N_c, H, W)``.

    Accepts a torch tensor or numpy array ``(N_c, H, W)`` (or ``(1, N_c, H, W)``), real or
    complex, finite. Tensors keep their dtype when complex (complex128 stays), real ones become
    complex64 (float64: complex128); numpy arrays become complex64.
    """
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(np.ascontiguousarray(maps).astype(np.complex64))
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got "
                        f"{type(maps).__name__}")
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3 or min(maps.shape) < 1:
        raise ValueError(f"{name} must have shape (coils, H, W), got {tuple(maps.shape)}")
    if not maps.is_complex():
        maps = maps.to(_complex_dtype(maps.dtype))
    if not bool(torch.isfinite(torch.view_as_real(maps)).all()):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return maps


class MultiCoilFourier(LinearOperator):
    """SENSE operator :math:`A u = (S F (C_c u))_{c=1}^{N_c}` (module docstring).

    Parameters
    ----------
    mask:
        Sampling weights ``(H, W)`` in ``[0, 1]``, DC at the centre, shared by all coils (as in
        :class:`~spinv.operators.mri.SubsampledFourier`; a tensor requiring grad stays
        differentiable, so a pattern can be learned).
    sensitivities:
        Coil maps :math:`C_c`, ``(N_c, H, W)`` complex (:func:`as_sensitivities`), in spinv's
        image frame (the image whose k-space is ``fftshift(fft2(u))``).
    noise_sigma:
        Optional default noise level of :meth:`measure` (per coil, complex, as
        :func:`~spinv.operators.noise.complex_gaussian_noise`).
    """

    domain_dtype = torch.complex64
    analytic_name = "rss"

    def __init__(self, mask, sensitivities, noise_sigma: float | None = None) -> None:
        super().__init__()
        mask = as_mask(mask, "mask")
        maps = as_sensitivities(sensitivities)
        if tuple(maps.shape[-2:]) != tuple(mask.shape):
            raise ValueError(f"sensitivities have image shape {tuple(maps.shape[-2:])}, the mask "
                             f"{tuple(mask.shape)}; they must agree")
        if noise_sigma is not None:
            noise_sigma = float(noise_sigma)
            if not np.isfinite(noise_sigma) or noise_sigma < 0:
                raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma}")
        self.noise_sigma = noise_sigma
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("sensitivities", maps, persistent=False)

    # ------------------------------------------------------------------ shapes
    @property
    def shape(self) -> tuple[int, int]:
        """Image (and k-space) size ``(H, W)``."""
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    @property
    def n_coils(self) -> int:
        """Number of coils :math:`N_c`."""
        return int(self.sensitivities.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """Default input shape ``(1, 1, H, W)``."""
        return (1, 1, *self.shape)

    @property
    def sampling_rate(self) -> float:
        """Fraction of sampled k-space locations (per coil)."""
        return float((self.mask > 0).float().mean())

    def _check(self, x: torch.Tensor, name: str, channels: int) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[-2:]) != self.shape or x.shape[1] != channels:
            raise ValueError(f"{name} must have shape (B, {channels}, {self.shape[0]}, "
                             f"{self.shape[1]}), got {tuple(x.shape)}")

    def _weights(self, like: torch.Tensor) -> torch.Tensor:
        real = torch.float64 if like.dtype == torch.complex128 else torch.float32
        return self.mask.to(device=like.device, dtype=real)

    def _maps(self, like: torch.Tensor) -> torch.Tensor:
        return self.sensitivities.to(device=like.device, dtype=like.dtype)

    # ------------------------------------------------------------------ the operator
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`y_c = S\\,\\mathrm{fftshift}(F(C_c x))`, shape ``(B, N_c, H, W)``."""
        self._check(x, "x", 1)
        x = x.to(_complex_dtype(x.dtype))
        k = torch.fft.fftshift(torch.fft.fft2(x * self._maps(x), norm="ortho"), dim=(-2, -1))
        return k * self._weights(k)

    def coil_images(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled coil images :math:`x_c = F^{-1}\\mathrm{ifftshift}(S y_c)`,
        ``(B, N_c, H, W)``."""
        self._check(y, "y", self.n_coils)
        y = y.to(_complex_dtype(y.dtype))
        k = torch.fft.ifftshift(y * self._weights(y), dim=(-2, -1))
        return torch.fft.ifft2(k, norm="ortho")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`A^*y = \\sum_c \\overline{C_c}\\,x_c`, shape ``(B, 1, H, W)``."""
        x = self.coil_images(y)
        return (x * self._maps(x).conj()).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`A^*Ax=\\sum_c\\overline{C_c}F^{-1}S^2F(C_cx)` (no shifts needed)."""
        self._check(x, "x", 1)
        x = x.to(_complex_dtype(x.dtype))
        maps = self._maps(x)
        w = torch.fft.ifftshift(self._weights(x), dim=(-2, -1))
        k = torch.fft.fft2(x * maps, norm="ortho") * w.pow(2)
        return (torch.fft.ifft2(k, norm="ortho") * maps.conj()).sum(dim=1, keepdim=True)

    def norm_bound(self) -> float:
        """The analytic bound :math:`\\max_i s_i\\,\\max_x(\\sum_c|C_c(x)|^2)^{1/2}\\ge\\|A\\|`
        (equal for full sampling)."""
        energy = self.sensitivities.abs().pow(2).sum(dim=0)
        return float(self.mask.max()) * float(energy.max().sqrt())

    # ------------------------------------------------------------------ analytic
    def rss(self, y: torch.Tensor) -> torch.Tensor:
        """Root-sum-of-squares :math:`(\\sum_c|x_c|^2)^{1/2}` of the zero-filled coil images,
        real ``(B, 1, H, W)``."""
        return self.coil_images(y).abs().pow(2).sum(dim=1, keepdim=True).sqrt()

    def sense_combine(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_c\\overline{C_c}x_c/\\sum_c|C_c|^2` (0 where
        :math:`\\sum_c|C_c|^2=0`), complex ``(B, 1, H, W)``."""
        back = self.adjoint(y)
        energy = self._maps(back).abs().pow(2).sum(dim=0)
        safe = torch.where(energy > 0, energy, torch.ones_like(energy))
        return torch.where(energy > 0, back / safe, torch.zeros_like(back))

    def analytic(self, y: torch.Tensor) -> torch.Tensor:
        """RSS magnitude with the phase of :math:`A^*y` (module docstring), complex
        ``(B, 1, H, W)``."""
        back = self.adjoint(y)
        phase = torch.sgn(back)
        phase = torch.where(back.abs() > 0, phase, torch.ones_like(phase))
        return self.rss(y).to(back.dtype) * phase

    def measure(
        self,
        x: torch.Tensor,
        sigma: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Simulated data :math:`y_c = S(F(C_cx) + \\eta_c)`, :math:`\\eta_c` independent complex
        white Gaussian of level ``sigma`` per coil (default ``noise_sigma``, 0 if unset)."""
        from spinv.operators.noise import complex_gaussian_noise

        y = self.forward(x)
        sigma = self.noise_sigma if sigma is None else sigma
        if sigma is None or float(sigma) == 0.0:
            return y
        return complex_gaussian_noise(y, sigma, mask=self.mask, seed=seed, generator=generator)

    def extra_repr(self) -> str:
        return (f"shape={self.shape}, coils={self.n_coils}, "
                f"sampling_rate={self.sampling_rate:.4f}")
