"""Measurement set-ups: the one way to build an inverse problem -- a forward operator, the noise
model that simulates data from a ground truth, and the analytic reconstruction.

* CT (thesis §2.5.1): :math:`y=-\\mu^{-1}\\log\\max\\{n/N_{in},\\eta\\}`,
  :math:`n\\sim\\mathrm{Pois}(N_{in}e^{-\\mu Ru})` (:func:`~spinv.operators.poisson_post_log`;
  ``photons=None``: noiseless :math:`y=Ru`), with :math:`Ru` projected on a grid ``upsample``
  times finer than the reconstruction grid when ``upsample > 1`` (no inverse crime,
  :meth:`~spinv.operators.ParallelBeamCT.refined`); analytic reconstruction: FBP.
* MRI (thesis §1.2.1, §2.5.1): :math:`y=S(Fu+\\varepsilon)`, complex white Gaussian
  :math:`\\varepsilon` of level ``sigma``
  (:meth:`~spinv.operators.SubsampledFourier.measure`); analytic reconstruction: zero filling
  :math:`F^{-1}S^*y`.
* Denoising: :math:`y=u+\\sigma n`, :math:`n` white Gaussian; analytic reconstruction: ``y``.

A :class:`Problem` serialises to a plain JSON-able dict (:meth:`Problem.to_dict`: kind, size,
CT geometry, noise, the MRI mask itself and the recipe it came from) and back
(:meth:`Problem.from_dict`, strict), so a checkpoint or a measurement file can carry it;
:meth:`Problem.difference` names the first field in which two problems differ.

>>> import torch
>>> p = mri_problem(16, pattern="low-pass", rate=0.5, noise=0.0)
>>> x = torch.rand(1, 1, 16, 16)
>>> y = p.simulate(x, seed=0)
>>> p.analytic(y).shape, p.operator.sampling_rate, p.analytic_name
(torch.Size([1, 1, 16, 16]), 0.5, 'zero-filled')
>>> Problem.from_dict(p.to_dict()) == p
True
>>> p.difference(mri_problem(32, pattern="low-pass", rate=0.5))
'size 16 vs 32'
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.operators import Identity, LinearOperator
from spinv.operators.ct_fan import FanGeometry
from spinv.operators.noise import DEFAULT_ETA, make_generator

__all__ = [
    "KINDS", "CTGeometry", "FanGeometry", "PoissonNoise", "GaussianNoise", "MaskRecipe",
    "CoilRecipe", "Problem",
    "ct_problem", "mri_problem", "denoising_problem",
]

KINDS = ("ct", "mri", "denoise")
FORMAT_VERSION = 1


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{key}={value!r}: expected {expected}")


def _int(value: Any, key: str, lo: int = 1, hi: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        raise _fail(key, value, f"an int >= {lo}" + (f" and <= {hi}" if hi else ""))
    return int(value)


def _real(value: Any, key: str, lo: float = 0.0, lo_open: bool = True,
          hi: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo)
        ok = ok and (hi is None or value <= hi)
    if not ok:
        bound = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi else "")
        raise _fail(key, value, f"a finite number {bound}")
    return value


def _store(obj: Any, **values: Any) -> None:
    """Set normalised values on a frozen dataclass in its ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class CTGeometry:
    """CT geometry (thesis §2.5.1): ``n_angles`` views uniform in ``[0, angular_range)``
    (``None``: :math:`\\pi` for parallel beams, :math:`2\\pi` for a fan), ``n_detectors`` bins
    of width ``detector_spacing`` (``None``: one pixel, at the isocentre for a fan; ``None``
    count: enough to cover the image), pixel side ``pixel_size``; data are simulated on a grid
    ``upsample`` times finer than the reconstruction grid. ``fan``: a :class:`FanGeometry` for
    fan-beam CT, ``None`` for parallel beams."""

    n_angles: int = 50
    n_detectors: int | None = None
    angular_range: float | None = None
    pixel_size: float = 1.0
    detector_spacing: float | None = None
    upsample: int = 1
    fan: FanGeometry | None = None

    def __post_init__(self) -> None:
        _store(self, n_angles=_int(self.n_angles, "geometry.n_angles"),
               pixel_size=_real(self.pixel_size, "geometry.pixel_size"),
               upsample=_int(self.upsample, "geometry.upsample", 1, 16))
        for name, hi in (("angular_range", 2 * math.pi), ("detector_spacing", None)):
            if getattr(self, name) is not None:
                _store(self, **{name: _real(getattr(self, name), f"geometry.{name}", hi=hi)})
        if self.n_detectors is not None:
            _store(self, n_detectors=_int(self.n_detectors, "geometry.n_detectors"))
        if self.fan is not None and not isinstance(self.fan, FanGeometry):
            raise _fail("geometry", self.fan, "'parallel', 'fan' or a FanGeometry")


@dataclass(frozen=True)
class PoissonNoise:
    """Low-dose CT noise: ``photons`` :math:`N_{in}` per detector pixel (``None``: noiseless),
    base attenuation ``mu`` (``None``: :func:`~spinv.operators.noise.default_mu` of the size),
    floor ``eta`` inside the logarithm."""

    photons: float | None = 1e4
    mu: float | None = None
    eta: float = DEFAULT_ETA

    def __post_init__(self) -> None:
        if self.photons is not None:
            _store(self, photons=_real(self.photons, "noise.photons"))
        if self.mu is not None:
            _store(self, mu=_real(self.mu, "noise.mu"))
        _store(self, eta=_real(self.eta, "noise.eta", hi=1.0))


@dataclass(frozen=True)
class GaussianNoise:
    """White Gaussian noise of level ``sigma`` (complex for MRI, see
    :func:`~spinv.operators.noise.complex_gaussian_noise`)."""

    sigma: float = 0.0

    def __post_init__(self) -> None:
        _store(self, sigma=_real(self.sigma, "noise.sigma", lo_open=False))


@dataclass(frozen=True)
class MaskRecipe:
    """How an MRI mask was drawn:
    ``spinv.operators.sampling.make_mask(pattern, shape, rate, seed)``."""

    pattern: str
    rate: float
    seed: int = 0

    def __post_init__(self) -> None:
        from spinv.operators.sampling import PATTERNS

        if self.pattern not in PATTERNS:
            raise _fail("mask.recipe.pattern", self.pattern, f"one of {', '.join(PATTERNS)}")
        _store(self, rate=_real(self.rate, "mask.recipe.rate", hi=1.0),
               seed=_int(self.seed, "mask.recipe.seed", lo=0))

    def make(self, shape: tuple[int, int]) -> torch.Tensor:
        """The float32 mask of this recipe for images of ``shape``."""
        from spinv.operators.sampling import make_mask

        return make_mask(self.pattern, tuple(shape), self.rate, seed=self.seed).float()


@dataclass(frozen=True)
class CoilRecipe:
    """Simulated multi-coil receive array: ``n_coils`` birdcage coils on a circle of
    ``radius`` (half image sides) around the field of view,
    :func:`spinv.operators.coil_sensitivities.birdcage_maps` (RSS-normalised)."""

    n_coils: int = 8
    radius: float = 1.5

    def __post_init__(self) -> None:
        _store(self, n_coils=_int(self.n_coils, "coils.n_coils", 1, 64),
               radius=_real(self.radius, "coils.radius", lo=1.0))

    def make(self, shape: tuple[int, int]) -> torch.Tensor:
        """The complex64 maps ``(n_coils, H, W)`` of this recipe."""
        from spinv.operators.coil_sensitivities import birdcage_maps

        return birdcage_maps(self.n_coils, tuple(shape), self.radius)


@dataclass(frozen=True, eq=False)
class Problem:
    """One inverse problem: ``kind``, image ``size`` (an int for square images, else
    ``(H, W)``; ``None`` for size-agnostic denoising), ``noise`` model, CT ``geometry``, MRI
    ``mask`` (and the ``recipe`` it came from), multi-coil MRI coil ``sensitivities``
    ``(N_c, H, W)`` (and the ``coils`` recipe of simulated ones; both ``None``: single coil).
    Built by :func:`ct_problem`,
    :func:`mri_problem`, :func:`denoising_problem`, :meth:`from_config` or
    :meth:`from_dict`; :attr:`operator` is built on first use (on the CPU, see :meth:`to`).
    Two problems are equal when :meth:`difference` finds nothing."""

    kind: str
    size: int | tuple[int, int] | None
    noise: PoissonNoise | GaussianNoise
    geometry: CTGeometry | None = None
    mask: torch.Tensor | None = None
    recipe: MaskRecipe | None = None
    sensitivities: torch.Tensor | None = None
    coils: CoilRecipe | None = None

    def __post_init__(self) -> None:
        from spinv.problem_format import check_problem

        _store(self, **check_problem(self))

    # ------------------------------------------------------------------ physics
    @functools.cached_property
    def operator(self) -> LinearOperator:
        """The forward operator :math:`A` (``ParallelBeamCT``, ``SubsampledFourier`` or
        ``Identity``)."""
        if self.kind == "ct" and self.geometry.fan is not None:
            from spinv.operators.ct_fan import FanBeamCT

            g, f = self.geometry, self.geometry.fan
            return FanBeamCT(self.size, g.n_angles, g.n_detectors, f.source_distance,
                             f.detector_distance, f.detector_type, g.detector_spacing,
                             g.pixel_size, g.angular_range)
        if self.kind == "ct":
            from spinv.operators import ParallelBeamCT

            g = self.geometry
            return ParallelBeamCT(
                self.size, n_angles=g.n_angles, n_detectors=g.n_detectors,
                detector_spacing=g.detector_spacing, pixel_size=g.pixel_size,
                angular_range=g.angular_range,
            )
        if self.kind == "mri" and self.sensitivities is not None:
            from spinv.operators.mri_multicoil import MultiCoilFourier

            return MultiCoilFourier(self.mask, self.sensitivities)
        if self.kind == "mri":
            from spinv.operators import SubsampledFourier

            return SubsampledFourier(self.mask)
        return Identity()

    @functools.cached_property
    def _fine_operator(self):
        return self.operator.refined(self.geometry.upsample)

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """``(H, W)`` of the images (``None`` for size-agnostic denoising)."""
        if self.size is None:
            return None
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    @property
    def analytic_name(self) -> str:
        """``"fbp"``, ``"zero-filled"`` or ``"noisy"``: the operator class's
        :attr:`~spinv.operators.LinearOperator.analytic_name` (without building the operator)."""
        from spinv.operators import ParallelBeamCT, SubsampledFourier

        if self.sensitivities is not None:
            return "rss"
        return {"ct": ParallelBeamCT, "mri": SubsampledFourier, "denoise": Identity}[
            self.kind].analytic_name

    def to(self, device) -> Problem:
        """Move :attr:`operator` to ``device`` (in place) and return ``self``."""
        self.operator.to(device)
        return self

    def with_operator(self, operator: LinearOperator) -> Problem:
        """This problem acting through an existing ``operator`` instance (e.g. one already on a
        GPU); raises ValueError if its geometry is not this problem's."""
        from spinv.problem_format import check_operator

        check_operator(self, operator)
        new = dataclasses.replace(self)
        new.__dict__["operator"] = operator
        return new

    def ground_truth(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction target of a real image ``x``: complex64 for MRI, else ``x``."""
        return x.to(torch.complex64) if self.kind == "mri" else x

    def analytic(self, y: torch.Tensor, **options) -> torch.Tensor:
        """The analytic reconstruction :math:`u_0(y)`: :meth:`LinearOperator.analytic` of the
        operator (FBP, zero filling or ``y``); ``options`` go to it (e.g. ``filter="hann"``)."""
        return self.operator.analytic(y, **options)

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """Noiseless measurements: :math:`Ru` (on the ``upsample`` times finer grid), :math:`SFu`
        or :math:`u`."""
        if self.kind == "ct" and self.geometry.upsample > 1:
            from spinv.operators.ct import fine_grid_sinogram

            return fine_grid_sinogram(x, self._fine_operator)
        return self.operator(x)

    @torch.no_grad()
    def simulate(
        self,
        x: torch.Tensor,
        seed: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Noisy measurements of the ground truth ``x`` ``(B, 1, H, W)``.

        The noise comes from ``seed`` or ``generator`` (neither: torch's global generator); a
        sequence of ``B`` generators draws sample ``j``'s noise from ``generator[j]`` alone, so
        it does not depend on which other samples share the batch. Real MRI images become
        complex (float32 -> complex64).
        """
        if isinstance(generator, Sequence):
            if seed is not None:
                raise ValueError("pass either seed or generator, not both")
            if len(generator) != x.shape[0]:
                raise ValueError(
                    f"generator: got {len(generator)} generators for a batch of {x.shape[0]}"
                )
            return self._simulate_each(x, list(generator))
        return self._simulate(x, make_generator(seed, generator))

    def _simulate(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        from spinv.operators.noise import gaussian_noise, poisson_post_log

        if self.kind == "ct":
            sino, n = self.clean(x), self.noise
            if n.photons is None:
                return sino
            return poisson_post_log(sino, n.mu, photons=n.photons, eta=n.eta, generator=gen)
        if self.kind == "mri":
            return self.operator.measure(x, sigma=self.noise.sigma, generator=gen)
        return gaussian_noise(x, self.noise.sigma, generator=gen)

    def _simulate_each(self, x: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        if self.kind == "ct" and self.geometry.upsample == 1:
            # one batched projection, then each sample's noise from its own generator
            from spinv.operators.noise import poisson_post_log

            clean, n = self.operator(x), self.noise
            if n.photons is None:
                return clean
            return torch.cat([
                poisson_post_log(clean[j : j + 1], n.mu, photons=n.photons, eta=n.eta,
                                 generator=g)
                for j, g in enumerate(gens)
            ])
        return torch.cat([self._simulate(x[j : j + 1], g) for j, g in enumerate(gens)])

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """A plain JSON-able dict (see :meth:`from_dict`)."""
        from spinv.problem_format import encode_mask

        size = self.size if not isinstance(self.size, tuple) else list(self.size)
        out: dict[str, Any] = {"version": FORMAT_VERSION, "kind": self.kind, "size": size}
        if self.geometry is not None:
            out["geometry"] = dataclasses.asdict(self.geometry)
            if self.geometry.fan is None:  # parallel beams: the dict of before fan beams
                del out["geometry"]["fan"]
        out["noise"] = dataclasses.asdict(self.noise)
        if self.mask is not None:
            out["mask"] = encode_mask(self.mask, self.recipe)
        if self.sensitivities is not None:
            from spinv.problem_format import encode_coils

            out["coils"] = encode_coils(self.sensitivities, self.coils)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Problem:
        """The problem of a :meth:`to_dict` dict; an unknown key, a missing required key or a
        bad value raises ValueError naming the key (e.g. ``problem.geometry.n_angles``)."""
        from spinv.problem_format import parse_problem_dict

        return cls(**parse_problem_dict(data))

    @classmethod
    def from_config(cls, config) -> Problem:
        """The problem of a training config section (:class:`spinv.training.config.
        ProblemConfig`: ``kind, image_size, n_angles, photons, mu, mask, noise_sigma,
        upsample, fan, coils``)."""
        n = config.image_size
        if config.kind == "ct":
            f = getattr(config, "fan", None)
            fan = None if f is None else FanGeometry(f.source_distance, f.detector_distance,
                                                     f.detector_type)
            return cls("ct", n, PoissonNoise(config.photons, config.mu),
                       CTGeometry(config.n_angles, upsample=config.upsample, fan=fan))
        if config.kind == "mri":
            m = config.mask
            recipe = MaskRecipe(m.pattern, m.rate, m.seed)
            coils = getattr(config, "coils", None)
            return cls("mri", n, GaussianNoise(config.noise_sigma), mask=recipe.make((n, n)),
                       recipe=recipe, coils=None if coils is None else CoilRecipe(coils))
        return cls(config.kind, n, GaussianNoise(config.noise_sigma))

    # ------------------------------------------------------------------ comparison
    def difference(self, other: Problem) -> str | None:
        """The first field in which ``other`` differs, as ``"<key> <mine> vs <theirs>"``
        (``"size 64 vs 128"``, ``"geometry.n_angles 50 vs 60"``, ``"mask differs at 12 of 4096
        k-space locations"``), or ``None`` when both describe the same problem."""
        from spinv.problem_format import first_difference

        return first_difference(self, other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return self.difference(other) is None

    __hash__ = None  # mutable tensor field

    def describe(self) -> str:
        """One line for people, e.g. ``ct 64x64: 50 views over 180°, 91 detectors, ...``."""
        from spinv.problem_format import describe

        return describe(self)


# ----------------------------------------------------------------------------- builders


def ct_problem(
    image_size: int,
    n_angles: int = 50,
    photons: float | None = 1e4,
    mu: float | None = None,
    upsample: int = 2,
    *,
    n_detectors: int | None = None,
    angular_range: float | None = None,
    pixel_size: float = 1.0,
    detector_spacing: float | None = None,
    geometry: str | FanGeometry = "parallel",
) -> Problem:
    """Low-dose CT on an ``image_size``² grid (``photons=None``: noiseless), simulated
    ``upsample`` times finer (thesis §2.5.1): parallel beams, or ``geometry="fan"`` (default
    source/detector) or a :class:`FanGeometry` for fan beams (full scan unless
    ``angular_range`` is given)."""
    fan = {"parallel": None, "fan": FanGeometry()}.get(geometry, geometry) \
        if isinstance(geometry, str) else geometry
    geometry = CTGeometry(n_angles, n_detectors, angular_range, pixel_size, detector_spacing,
                          upsample, fan)
    return Problem("ct", image_size, PoissonNoise(photons, mu), geometry)


def mri_problem(
    shape: int | tuple[int, int] | None = None,
    pattern: str | Path = "lines",
    rate: float = 0.25,
    noise: float = 0.0,
    seed: int = 0,
    *,
    mask: torch.Tensor | np.ndarray | None = None,
    coils: int | None = None,
    sensitivities: torch.Tensor | np.ndarray | None = None,
) -> Problem:
    """Sampled-Fourier MRI with complex noise level ``noise`` (per coil). The mask is ``mask``
    itself if given (then ``shape`` may be omitted), else ``pattern``: a name of
    :data:`spinv.operators.sampling.PATTERNS` drawn at ``rate`` with ``seed``, or a ``.npy``
    mask file (then ``rate`` and ``seed`` are ignored). Multi-coil (SENSE,
    :class:`~spinv.operators.mri_multicoil.MultiCoilFourier`): ``coils=N`` simulates ``N``
    birdcage coils (:class:`CoilRecipe`), or ``sensitivities`` gives the maps ``(N_c, H, W)``
    (e.g. estimated by ESPIRiT)."""
    from spinv.operators.sampling import PATTERNS, load_mask

    hw = None if shape is None else ((shape, shape) if isinstance(shape, int) else tuple(shape))
    recipe = None
    if mask is None and hw is None:
        raise ValueError("shape=None: pass the image shape or the mask itself")
    if mask is None and str(pattern).endswith(".npy"):
        mask = load_mask(pattern)
        if tuple(mask.shape) != hw:
            raise ValueError(
                f"mask {str(pattern)!r} has shape {tuple(mask.shape)}, the image is {hw}"
            )
    elif mask is None and pattern in PATTERNS:
        recipe = MaskRecipe(str(pattern), float(rate), seed)
        mask = recipe.make(hw)
    elif mask is None:
        raise ValueError(
            f"mask={str(pattern)!r}: expected one of {', '.join(PATTERNS)} or a .npy file"
        )
    coil_recipe = None if coils is None else CoilRecipe(coils)
    if coil_recipe is not None and sensitivities is not None:
        raise ValueError("coils: pass either coils=N (simulated maps) or sensitivities, not both")
    return Problem("mri", hw, GaussianNoise(noise), mask=mask, recipe=recipe,
                   sensitivities=sensitivities, coils=coil_recipe)


def denoising_problem(noise: float = 0.1, size: int | tuple[int, int] | None = None) -> Problem:
    """Gaussian denoising :math:`y=u+\\sigma n` (``size=None``: any image size)."""
    return Problem("denoise", size, GaussianNoise(noise))
