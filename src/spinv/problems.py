"""Measurement set-ups: a forward operator, how data are simulated from a ground truth, and the
analytic reconstruction, bundled for one image problem.

* CT (thesis §2.5.1): :math:`y=-\\mu^{-1}\\log\\max\\{n/N_{in},\\eta\\}`,
  :math:`n\\sim\\mathrm{Pois}(N_{in}e^{-\\mu Ru})`, simulated on a grid ``upsample`` times finer
  than the reconstruction grid (no inverse crime, :func:`spinv.operators.ct.simulate_ct`);
  analytic reconstruction: FBP.
* MRI (thesis §1.2.1, §2.5.1): :math:`y=S(Fu+\\varepsilon)`, complex white Gaussian
  :math:`\\varepsilon`; analytic reconstruction: zero filling :math:`F^{-1}S^*y`.
* Denoising: :math:`y=u+\\sigma n`.

>>> import torch
>>> p = mri_problem(16, pattern="low-pass", rate=0.5, noise=0.0)
>>> x = torch.rand(1, 1, 16, 16)
>>> y = p.simulate(x, seed=0)
>>> p.analytic(y).shape, p.operator.sampling_rate
(torch.Size([1, 1, 16, 16]), 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from spinv.operators import Identity, LinearOperator

KINDS = ("ct", "mri", "denoise")


@dataclass
class Problem:
    """One inverse problem: ``operator``, ``simulate(x, seed)`` and ``analytic(y)``."""

    kind: str
    operator: LinearOperator
    options: dict = field(default_factory=dict)

    def simulate(self, x: torch.Tensor, seed: int | None = 0) -> torch.Tensor:
        """Noisy measurements of the ground truth ``x`` ``(B, 1, H, W)``, fixed by ``seed``."""
        o = self.options
        if self.kind == "ct":
            from spinv.operators.ct import simulate_ct

            return simulate_ct(
                x.float(), self.operator.n_angles, photons=o["photons"], mu=o["mu"],
                upsample=o["upsample"], seed=seed,
            )
        if self.kind == "mri":
            return self.operator.measure(x.to(torch.complex64), sigma=o["noise"], seed=seed)
        from spinv.operators.noise import gaussian_noise

        return gaussian_noise(x, o["noise"], seed=seed)

    def analytic(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """FBP (CT), zero filling (MRI) or the data itself (denoising)."""
        if self.kind == "ct":
            return self.operator.fbp(y, filter=filter)
        if self.kind == "mri":
            return self.operator.adjoint(y)
        return y

    @property
    def analytic_name(self) -> str:
        return {"ct": "fbp", "mri": "zero-filled", "denoise": "noisy"}[self.kind]


def ct_problem(
    image_size: int,
    n_angles: int = 50,
    photons: float | None = 1e4,
    mu: float | None = None,
    upsample: int = 2,
) -> Problem:
    """Low-dose parallel-beam CT on an ``image_size``² grid (``photons=None``: noiseless)."""
    from spinv.operators import ParallelBeamCT

    if isinstance(n_angles, bool) or not isinstance(n_angles, int) or n_angles < 1:
        raise ValueError(f"n_angles must be a positive int, got {n_angles!r}")
    if photons is not None and not photons > 0:
        raise ValueError(f"photons must be > 0 (or None for noiseless data), got {photons!r}")
    op = ParallelBeamCT(image_size, n_angles=n_angles)
    return Problem("ct", op, {"photons": photons, "mu": mu, "upsample": upsample})


def mri_problem(
    shape: int | tuple[int, int],
    pattern: str | Path = "lines",
    rate: float = 0.25,
    noise: float = 0.0,
    seed: int = 0,
) -> Problem:
    """Sampled-Fourier MRI; ``pattern`` is a name of :data:`spinv.sampling.PATTERNS` or a
    ``.npy`` mask file (then ``rate`` is ignored)."""
    from spinv.operators import SubsampledFourier
    from spinv.sampling import PATTERNS, load_mask, make_mask

    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if str(pattern).endswith(".npy"):
        mask = load_mask(pattern)
        hw = (shape, shape) if isinstance(shape, int) else tuple(shape)
        if tuple(mask.shape) != hw:
            raise ValueError(
                f"mask {str(pattern)!r} has shape {tuple(mask.shape)}, the image is {hw}"
            )
    elif pattern in PATTERNS:
        mask = make_mask(str(pattern), shape, rate, seed=seed)
    else:
        raise ValueError(
            f"mask={str(pattern)!r}: expected one of {', '.join(PATTERNS)} or a .npy file"
        )
    return Problem("mri", SubsampledFourier(mask), {"noise": float(noise)})


def denoising_problem(noise: float = 0.1) -> Problem:
    """Gaussian denoising :math:`y=u+\\sigma n`."""
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    return Problem("denoise", Identity(), {"noise": float(noise)})
