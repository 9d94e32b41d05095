"""Filtered back-projection (FBP) filters for the parallel-beam ray transform.

Radon inversion for parallel-beam data over :math:`\\theta\\in[0,\\pi)` (the analytic
reconstruction behind the FBP images of thesis Figure 2.5):

.. math:: u(x) = \\int_0^\\pi (g_\\theta * h)(x\\cdot\\omega_\\theta)\\,d\\theta,
          \\qquad \\hat h(\\sigma) = |\\sigma| \\;(\\sigma \\text{ in cycles per unit length}).

Discretised with detector spacing :math:`\\Delta s`, pixel side :math:`p` and :math:`n_a`
equispaced angles, the convolution uses the band-limited Ram-Lak kernel in samples,
:math:`h_0 = 1/4`, :math:`h_n = -1/(\\pi n)^2` for odd :math:`n`, 0 for even :math:`n \\ne 0`
(which is :math:`\\Delta s^2 h(n\\Delta s)`), and the back-projection is the adjoint
:math:`R^*` of the Joseph matrix, whose per-angle column sums are :math:`p^2/\\Delta s`. The
factors of :math:`\\Delta s` cancel and

.. math:: u \\approx \\frac{\\pi}{n_a\\,p^2}\\; R^*\\big(h * g\\big).

The ramp can be apodised: ``"shepp-logan"`` multiplies the frequency response by
:math:`\\mathrm{sinc}(f)` and ``"hann"`` by :math:`\\cos^2(\\pi f)` (:math:`f` in cycles per
sample, :math:`|f|\\le 1/2`). Filtering is a zero-padded FFT convolution along the detector axis
(padding to a power of two at least twice the detector count, so there is no wrap-around).

>>> import torch
>>> h = ramp_filter(64, "ramp", torch.float64, "cpu")
>>> h.shape
torch.Size([33])
>>> round(float(h[0]), 4), round(float(h[-1]), 4)   # ~|f|: small at DC, ~1/2 at Nyquist
(0.0032, 0.4968)
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["FILTERS", "ramp_filter", "filter_sinogram", "padded_length"]

FILTERS = ("ramp", "shepp-logan", "hann")


def padded_length(n_detectors: int) -> int:
    """FFT length used to filter ``n_detectors`` samples: a power of two >= max(64, 2n)."""
    return max(64, 1 << int(math.ceil(math.log2(2 * n_detectors))))


def ramp_filter(length: int, filter: str, dtype: torch.dtype, device,
                fan_step: float | None = None, support: int | None = None) -> torch.Tensor:
    """Real frequency response (``rfft`` layout, ``length // 2 + 1`` entries) of the filter.

    Built as the DFT of the spatial Ram-Lak kernel (exactly zero at DC), times the window.
    ``fan_step`` :math:`\\alpha` (radians) gives the kernel of equiangular fan-beam data instead,
    :math:`h_n\\,(n\\alpha/\\sin n\\alpha)^2` (Kak & Slaney 1988, §3.4.1; the factor is held
    at its value for :math:`|n|` = ``support - 1`` beyond the ``support`` samples that a linear
    convolution of that many detector bins uses).
    """
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    n = np.concatenate([np.arange(0, length // 2 + 1), np.arange(-(length // 2) + 1, 0)])
    h = np.zeros(length)
    h[0] = 0.25
    odd = n % 2 == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    if fan_step is not None:
        phi = np.minimum(np.abs(n), (support or length // 2) - 1) * fan_step
        safe = np.where(phi > 0, phi, 1.0)
        h *= np.where(phi > 0, (safe / np.sin(safe)) ** 2, 1.0)
    response = np.real(np.fft.rfft(h))
    freq = np.fft.rfftfreq(length)
    if filter == "shepp-logan":
        response = response * np.sinc(freq)
    elif filter == "hann":
        response = response * np.cos(np.pi * freq) ** 2
    return torch.as_tensor(response, dtype=dtype, device=device)


def filter_sinogram(y: torch.Tensor, filter: str = "ramp",
                    fan_step: float | None = None) -> torch.Tensor:
    """Convolve every projection (last axis of ``y``) with the chosen ramp filter (the
    equiangular fan-beam kernel for angular bin width ``fan_step``, see :func:`ramp_filter`)."""
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    n = y.shape[-1]
    length = padded_length(n)
    response = ramp_filter(length, filter, y.dtype, y.device, fan_step, n)
    spec = torch.fft.rfft(y, n=length, dim=-1)
    return torch.fft.irfft(spec * response, n=length, dim=-1)[..., :n]
