"""Fan-beam ray transform (Joseph's method) as a cached sparse matrix, and weighted FBP.

Clinical CT scanners measure divergent rays from a point source: beyond the parallel-beam model
of thesis §2.5.1 (:mod:`spinv.operators.ct`), the fan-beam transform samples the same line
integrals along the lines through the source.

Geometry (the image grid and units of :class:`~spinv.operators.ParallelBeamCT`: ``N x N``
pixels of side ``p`` centred at the origin, ``x`` along columns, ``y`` up). The source turns
on a circle of radius :math:`D` = ``source_distance`` (source to isocentre) about the origin;
at view angle :math:`\\beta` it sits at :math:`D\\,\\omega_\\beta^\\perp`,
:math:`\\omega_\\beta = (\\cos\\beta, \\sin\\beta)`,
:math:`\\omega^\\perp = (-\\sin, \\cos)`. The ray with fan angle :math:`\\gamma` (measured
from the central ray through the origin) is the line

.. math:: x\\cdot\\omega_{\\beta+\\gamma} = D\\sin\\gamma,

i.e. the parallel-beam ray :math:`(\\theta, s) = (\\beta + \\gamma, D\\sin\\gamma)` (Kak & Slaney
1988, §3.4). The detector lies at :math:`D_{sd}` = ``detector_distance`` from the source.

* ``detector_type="equiangular"`` (curved, centred on the source, as on most clinical
  scanners): bins of arc length ``detector_spacing`` :math:`\\Delta` at :math:`D_{sd}`, fan angles
  :math:`\\gamma_k = (k - (n_d-1)/2)\\,\\Delta/D_{sd}`;
* ``detector_type="flat"``: a line perpendicular to the central ray, bins
  :math:`u_k = (k - (n_d-1)/2)\\,\\Delta`, :math:`\\gamma_k = \\arctan(u_k / D_{sd})`.

Defaults: :math:`D = 2Np` (the image's circumscribed circle subtends a fan of
:math:`2\\arcsin(1/(2\\sqrt2)) \\approx 41°`), :math:`D_{sd} = 2D`, a bin that is one pixel
wide at the isocentre (:math:`\\Delta = p D_{sd}/D`), and just enough bins to cover the
circumscribed circle. Source angles are uniform on :math:`[0, r)`, :math:`r` =
``angular_range``: :math:`2\\pi` (a full scan, the default) or a short scan of at least
:math:`\\pi` plus the fan angle.

Discretisation: each ray is a line :math:`(\\theta, s)` handed to the parallel-beam Joseph
interpolation (:func:`spinv.operators.ct_matrix.build_ray_matrix`: the same weights as the
parallel projector), so the matrix, its disk cache, memory budget (``SPINV_MAX_OPERATOR_GIB``)
and exact transpose adjoint are shared with :class:`~spinv.operators.ParallelBeamCT`
(:class:`~spinv.operators.ct.RayMatrixOperator`). The source lies outside the image, so the
line integral equals the half-line integral from the source.

Analytic reconstruction (:meth:`FanBeamCT.fbp`): the fan-beam filtered back-projection of
Kak & Slaney (1988), §3.4.1 (equiangular) and §3.4.2 (flat), the two-dimensional case of
Feldkamp, Davis & Kress (1984) -- no rebinning:

* equiangular: :math:`u(x) = \\int_0^{2\\pi} L^{-2}\\, Q_\\beta(\\gamma(x))\\,d\\beta`,
  :math:`Q_\\beta = (D\\cos\\gamma\\; g_\\beta) * \\tfrac12 (\\gamma/\\sin\\gamma)^2 h`,
  with :math:`L` the distance from the source to :math:`x`;
* flat (on the virtual detector through the isocentre, coordinate :math:`s = D\\tan\\gamma`):
  :math:`u(x) = \\int_0^{2\\pi} U^{-2}\\, Q_\\beta(s(x))\\,d\\beta`,
  :math:`Q_\\beta = (g_\\beta\\, D/\\sqrt{D^2+s^2}) * \\tfrac12 h`, :math:`U = (D - x\\cdot
  \\omega_\\beta^\\perp)/D`;

:math:`h` is the ramp (optionally apodised, :mod:`spinv.operators.fbp`). The back-projection is
pixel-driven with linear interpolation between bins and the distance weights above (it is *not*
the adjoint, whose ray density would weigh by :math:`1/L` only). A short scan
(:math:`r < 2\\pi`) multiplies the data by twice Parker's (1982) weights, with
:math:`\\delta = (r - \\pi)/2` at least the half fan angle.

>>> import torch
>>> A = FanBeamCT(16, n_angles=12, cache=False)
>>> A.source_distance, A.detector_distance, A.n_detectors
(32.0, 64.0, 24)
>>> A.adjoint_test() < 1e-5
True
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from spinv.operators.ct import RayMatrixOperator
from spinv.operators.ct_matrix import MATRIX_FORMAT_VERSION, build_ray_matrix
from spinv.operators.fbp import FILTERS, filter_sinogram

__all__ = ["DETECTOR_TYPES", "FanBeamCT", "FanGeometry", "fan_geometry", "parker_weights"]

DETECTOR_TYPES = ("equiangular", "flat")
_VIEW_CHUNK = 16  # views back-projected at a time


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def parker_weights(betas: np.ndarray, gammas: np.ndarray, scan: float) -> np.ndarray:
    """Parker's (1982) short-scan weights :math:`w(\\beta, \\gamma)`, shape ``(views, bins)``,
    for a scan over :math:`[0, \\pi + 2\\delta]`, :math:`\\delta = (` ``scan`` :math:`- \\pi)/2`:
    :math:`\\sin^2(\\frac\\pi4\\frac{\\beta}{\\delta-\\gamma})` up to
    :math:`2\\delta - 2\\gamma`, 1 up to :math:`\\pi - 2\\gamma`,
    :math:`\\sin^2(\\frac\\pi4\\frac{\\pi+2\\delta-\\beta}{\\delta+\\gamma})`
    up to :math:`\\pi + 2\\delta`; a ray and its conjugate
    :math:`(\\beta + \\pi + 2\\gamma, -\\gamma)` weigh 1 together."""
    delta = (scan - math.pi) / 2
    b, g = np.asarray(betas)[:, None], np.asarray(gammas)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.sin(math.pi / 4 * b / (delta - g)) ** 2
        fall = np.sin(math.pi / 4 * (math.pi + 2 * delta - b) / (delta + g)) ** 2
    w = np.where(b < 2 * (delta - g), rise, np.where(b <= math.pi - 2 * g, 1.0, fall))
    return np.where((b >= 0) & (b <= math.pi + 2 * delta), np.nan_to_num(w), 0.0)


@dataclass(frozen=True)
class FanGeometry:
    """The fan-beam record of a CT problem (:class:`spinv.problems.CTGeometry` ``fan``): source
    to isocentre ``source_distance`` and source to detector ``detector_distance`` (``None``: the
    defaults of :func:`fan_geometry`), ``detector_type`` ``"equiangular"`` or ``"flat"``."""

    source_distance: float | None = None
    detector_distance: float | None = None
    detector_type: str = "equiangular"

    def __post_init__(self) -> None:
        for name in ("source_distance", "detector_distance"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, _positive(name, value))
                except ValueError:
                    raise ValueError(f"geometry.fan.{name}={value!r}: expected a finite "
                                     "number > 0") from None
        if self.detector_type not in DETECTOR_TYPES:
            raise ValueError(f"geometry.fan.detector_type={self.detector_type!r}: expected "
                             f"{' or '.join(DETECTOR_TYPES)}")


def fan_geometry(
    image_size: int,
    pixel_size: float = 1.0,
    source_distance: float | None = None,
    detector_distance: float | None = None,
    detector_type: str = "equiangular",
    detector_spacing: float | None = None,
    n_detectors: int | None = None,
) -> dict:
    """The validated fan geometry with its defaults resolved (module docstring):
    ``{"source_distance", "detector_distance", "detector_type", "detector_spacing",
    "n_detectors"}``; ValueError naming the parameter otherwise. Used by :class:`FanBeamCT` and
    by :mod:`spinv.problems` (which records the resolved values without building a matrix)."""
    if detector_type not in DETECTOR_TYPES:
        raise ValueError(f"detector_type must be one of {', '.join(DETECTOR_TYPES)}, got "
                         f"{detector_type!r}")
    n, p = int(image_size), _positive("pixel_size", pixel_size)
    d = _positive("source_distance", 2.0 * n * p if source_distance is None else source_distance)
    radius = n * p / math.sqrt(2)
    if d <= radius:
        raise ValueError(f"source_distance must exceed the image's half-diagonal "
                         f"{radius:.4g} (the source must lie outside the image), got {d:g}")
    dsd = _positive("detector_distance", 2.0 * d if detector_distance is None
                    else detector_distance)
    if dsd <= d:
        raise ValueError(f"detector_distance must exceed source_distance {d:g} (the "
                         f"detector lies beyond the isocentre), got {dsd:g}")
    spacing = _positive("detector_spacing", p * dsd / d if detector_spacing is None
                        else detector_spacing)
    if n_detectors is None:
        half_fan = math.asin(radius / d)
        extent = 2 * half_fan * dsd if detector_type == "equiangular" else \
            2 * dsd * math.tan(half_fan)
        n_detectors = math.ceil(extent / spacing - 1e-9)
    if isinstance(n_detectors, bool) or not isinstance(n_detectors, numbers.Integral) \
            or n_detectors < 1:
        raise ValueError(f"n_detectors must be a positive int, got {n_detectors!r}")
    if detector_type == "equiangular" and n_detectors * spacing / dsd >= math.pi:
        raise ValueError(f"n_detectors {n_detectors} x detector_spacing {spacing:g} spans a "
                         "fan of 180 degrees or more")
    return {"source_distance": d, "detector_distance": dsd, "detector_type": detector_type,
            "detector_spacing": spacing, "n_detectors": int(n_detectors)}


class FanBeamCT(RayMatrixOperator):
    """Discrete fan-beam ray transform (module docstring), Joseph's method, exact adjoint.

    Parameters
    ----------
    image_size: side ``N`` of the square image (``(B, C, N, N)`` inputs).
    n_angles: number of source positions, uniform on :math:`[0, r)`.
    n_detectors: detector bins; default: enough to cover the image's circumscribed circle.
    source_distance: source to isocentre :math:`D` (length units of ``pixel_size``; default
        :math:`2Np`); must exceed the image's half-diagonal :math:`Np/\\sqrt2`.
    detector_distance: source to detector :math:`D_{sd} > D` (default :math:`2D`).
    detector_type: ``"equiangular"`` (curved) or ``"flat"``.
    detector_spacing: bin width at the detector (arc length for the curved detector); default
        one pixel at the isocentre, :math:`p D_{sd}/D`.
    pixel_size: pixel side :math:`p`.
    angular_range: :math:`r`, default :math:`2\\pi` (full scan).
    cache: read/write the disk cache (``$SPINV_CACHE/ct``).

    Sinograms have shape ``(B, C, n_angles, n_detectors)`` (rows: source positions).
    """

    cache_prefix = "fan"
    analytic_name = "fbp"

    def __init__(
        self,
        image_size: int,
        n_angles: int = 50,
        n_detectors: int | None = None,
        source_distance: float | None = None,
        detector_distance: float | None = None,
        detector_type: str = "equiangular",
        detector_spacing: float | None = None,
        pixel_size: float = 1.0,
        angular_range: float = 2 * math.pi,
        cache: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) \
                or image_size < 2:
            raise ValueError(f"image_size must be an int >= 2, got {image_size!r}")
        if isinstance(n_angles, bool) or not isinstance(n_angles, numbers.Integral) \
                or n_angles < 1:
            raise ValueError(f"n_angles must be a positive int, got {n_angles!r}")
        p = _positive("pixel_size", pixel_size)
        r = _positive("angular_range", angular_range)
        if r > 2 * math.pi + 1e-12:
            raise ValueError(f"angular_range must be <= 2 pi, got {angular_range!r}")
        self.image_size, self.n_angles, self.pixel_size = int(image_size), int(n_angles), p
        self.angular_range = r
        g = fan_geometry(self.image_size, p, source_distance, detector_distance, detector_type,
                         detector_spacing, n_detectors)
        self.source_distance, self.detector_distance = g["source_distance"], \
            g["detector_distance"]
        self.detector_type, self.detector_spacing = g["detector_type"], g["detector_spacing"]
        self.n_detectors = g["n_detectors"]
        betas = torch.linspace(0, r, self.n_angles + 1, dtype=torch.float64)[:-1]
        self._betas = betas.numpy().copy()
        self.register_buffer("angles", betas.to(torch.float32), persistent=False)
        self._setup_matrix(cache)

    # ------------------------------------------------------------------ geometry and matrix
    @property
    def bin_positions(self) -> np.ndarray:
        """Detector coordinates of the bin centres: fan angles (radians, equiangular) or
        positions :math:`u_k` on the flat detector."""
        k = np.arange(self.n_detectors) - (self.n_detectors - 1) / 2.0
        if self.detector_type == "equiangular":
            return k * (self.detector_spacing / self.detector_distance)
        return k * self.detector_spacing

    @property
    def fan_angles(self) -> np.ndarray:
        """The fan angle :math:`\\gamma_k` of every bin (radians), float64."""
        pos = self.bin_positions
        return pos if self.detector_type == "equiangular" else np.arctan(
            pos / self.detector_distance)

    @property
    def half_fan_angle(self) -> float:
        """Largest :math:`|\\gamma_k|` plus half a bin: half the fan the detector spans."""
        g = self.fan_angles
        step = (g[-1] - g[0]) / (len(g) - 1) if len(g) > 1 else 0.0
        return float(np.abs(g).max() + step / 2)

    def _geometry_key(self) -> str:
        desc = {
            "version": MATRIX_FORMAT_VERSION, "method": "joseph-fan",
            "image_size": self.image_size, "n_detectors": self.n_detectors,
            "detector_type": self.detector_type,
            **{name: float(getattr(self, name)).hex() for name in (
                "source_distance", "detector_distance", "detector_spacing", "pixel_size")},
            "angles_sha256": hashlib.sha256(self._betas.tobytes()).hexdigest(),
        }
        return json.dumps(desc, sort_keys=True)

    def _build_matrix(self) -> sp.csr_matrix:
        theta = self._betas[:, None] + self.fan_angles[None, :]
        offsets = np.broadcast_to(self.source_distance * np.sin(self.fan_angles), theta.shape)
        return build_ray_matrix(self.image_size, np.sin(theta), np.cos(theta), offsets,
                                self.pixel_size)

    # ------------------------------------------------------------------ FBP
    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """Fan-beam filtered back-projection (module docstring; Kak & Slaney §3.4.1-3.4.2),
        ``filter`` in ``"ramp"``, ``"shepp-logan"``, ``"hann"``. A short scan needs
        :math:`r \\ge \\pi + 2\\gamma_{max}` (Parker weights)."""
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
        self._check(y, "y", self.sinogram_shape)
        d, gammas = self.source_distance, self.fan_angles
        weight = np.cos(gammas)[None, :] * np.ones((self.n_angles, 1))
        if self.angular_range < 2 * math.pi - 1e-9:
            if self.angular_range < math.pi + 2 * self.half_fan_angle - 1e-9:
                raise ValueError(
                    f"angular_range {math.degrees(self.angular_range):.4g} deg: FBP of a short "
                    f"scan needs 180 deg plus the fan angle, "
                    f"{180 + 2 * math.degrees(self.half_fan_angle):.4g} deg")
            weight = weight * 2 * parker_weights(self._betas, gammas, self.angular_range)
        w = torch.as_tensor(weight, dtype=y.dtype, device=y.device)
        if self.detector_type == "equiangular":
            alpha = self.detector_spacing / self.detector_distance
            q = filter_sinogram(y * w * d, filter, fan_step=alpha) / (2 * alpha)
        else:
            tau = self.detector_spacing * d / self.detector_distance  # bin width at isocentre
            q = filter_sinogram(y * w, filter) / (2 * tau)
        return self._weighted_backprojection(q) * (self.angular_range / self.n_angles)

    def _weighted_backprojection(self, q: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_\\beta W(x, \\beta)\\, q_\\beta(k(x))`: pixel-driven, linear interpolation
        between bins (zero outside the detector), :math:`W = L^{-2}` (equiangular) or
        :math:`U^{-2}` (flat)."""
        n, p, d = self.image_size, self.pixel_size, self.source_distance
        b, c, n_views, n_det = q.shape
        coords = (torch.arange(n, dtype=q.dtype, device=q.device) - (n - 1) / 2) * p
        xs, ys = coords[None, :], -coords[:, None]  # x along columns, y up
        flat_q = q.reshape(b * c, n_views, n_det)
        out = torch.zeros(b * c, n * n, dtype=q.dtype, device=q.device)
        betas = torch.as_tensor(self._betas, dtype=q.dtype, device=q.device)
        k0 = (n_det - 1) / 2
        for start in range(0, n_views, _VIEW_CHUNK):
            beta = betas[start:start + _VIEW_CHUNK, None, None]
            along = xs * torch.cos(beta) + ys * torch.sin(beta)  # x . omega_beta
            depth = d - (-xs * torch.sin(beta) + ys * torch.cos(beta))  # D - x . omega_perp
            if self.detector_type == "equiangular":
                pos = torch.atan2(along, depth) * (self.detector_distance / self.detector_spacing)
                weight = 1.0 / (along**2 + depth**2)
            else:
                pos = along / depth * (self.detector_distance / self.detector_spacing)
                weight = (d / depth) ** 2
            idx = (pos + k0).reshape(pos.shape[0], -1)
            lo = torch.floor(idx)
            t = idx - lo
            lo = lo.long()
            chunk = flat_q[:, start:start + _VIEW_CHUNK]
            acc = 0
            for j, wt in ((lo, 1 - t), (lo + 1, t)):
                ok = (j >= 0) & (j < n_det)
                vals = torch.gather(chunk, 2, j.clamp(0, n_det - 1).expand(b * c, -1, -1))
                acc = acc + vals * (wt * ok)
            out = out + (acc * weight.reshape(weight.shape[0], -1)).sum(1)
        return out.reshape(b, c, n, n)

    def analytic(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """The analytic reconstruction of fan-beam data: :meth:`fbp`."""
        return self.fbp(y, filter=filter)

    def refined(self, upsample: int) -> FanBeamCT:
        """The same square, sources and detector on a grid ``upsample`` times finer (see
        :meth:`ParallelBeamCT.refined <spinv.operators.ParallelBeamCT.refined>`)."""
        if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 1:
            raise ValueError(f"upsample must be a positive int, got {upsample!r}")
        return FanBeamCT(
            self.image_size * upsample, self.n_angles, self.n_detectors, self.source_distance,
            self.detector_distance, self.detector_type, self.detector_spacing,
            self.pixel_size / upsample, self.angular_range, self._use_cache)

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, n_angles={self.n_angles}, "
                f"n_detectors={self.n_detectors}, source_distance={self.source_distance:g}, "
                f"detector_distance={self.detector_distance:g}, "
                f"detector_type={self.detector_type!r}, "
                f"detector_spacing={self.detector_spacing:g}")
