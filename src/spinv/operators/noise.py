"""Noise models: low-dose CT (Poisson, post-log) and complex white Gaussian noise for MRI.

Every function takes either ``seed`` (an int; a fresh CPU :class:`torch.Generator` is seeded
with it) or ``generator`` (used as given); with neither, torch's global RNG is used. Random
numbers are drawn on the generator's device (CPU by default) and moved to the data's device,
so a seed gives the same noise on every device.

Low-dose CT (thesis §2.5.1, LIDC-IDRI paragraph). Given the noiseless line integrals
:math:`Ru` (the sinogram), photon counts and post-log data are

.. math:: n \\sim \\mathrm{Pois}\\big(N_{in}\\,e^{-\\mu\\,Ru}\\big), \\qquad
          y = -\\frac1\\mu \\log\\Big(\\max\\Big\\{\\frac{n}{N_{in}}, \\eta\\Big\\}\\Big),

with :math:`N_{in}=10^4` photons per detector pixel, :math:`\\eta=10^{-8}`, and a base
attenuation coefficient :math:`\\mu` that converts the image's units times the pixel-unit path
length into optical depth. For large counts :math:`y\\approx Ru + \\varepsilon` with
:math:`\\operatorname{Var}\\varepsilon \\approx e^{\\mu Ru}/(\\mu^2 N_{in})`.

The thesis does not print the value of :math:`\\mu` it used (it is set relative to its ASTRA
geometry: 512 x 512 chest images, values clipped to [-1024, 1023] HU and scaled to [0, 1]).
:func:`default_mu` reproduces that physical set-up in spinv's pixel units: an image value of 1
(1023 HU, i.e. about twice the attenuation of water, :math:`\\approx 0.04\\,\\mathrm{mm}^{-1}`
at ~70 keV) over a pixel of side ``fov_mm / N`` (field of view 350 mm) gives
:math:`\\mu = 0.04 \\cdot 350 / N \\approx 14/N`. Check: water (0 HU) has image value
:math:`1024/2047\\approx 0.5`, so a ray through 30 cm of water-like tissue has optical depth
:math:`0.5\\cdot 0.04\\cdot 300 = 6` whatever ``N`` (about 25 of the :math:`10^4` photons
survive), while rays crossing the lungs keep far more: a realistic low-dose regime.

Complex Gaussian noise (thesis §1.2.1 and §2.5.1): :math:`y = S(Fu + \\eta)` with
:math:`\\eta` complex white Gaussian. Convention used here: ``sigma`` is the standard deviation
of each *complex* entry, :math:`E|\\eta_i|^2=\\sigma^2`, i.e. the real and imaginary parts are
independent :math:`N(0, \\sigma^2/2)`: :math:`\\eta = \\sigma (n_1 + i n_2)/\\sqrt 2`. With the
orthonormal FFT this is the same noise level per pixel in image space (zero-filled full data:
:math:`F^{-1}\\eta` has the same distribution). Noise is multiplied by the sampling weights
:math:`S` (so it is absent where :math:`S=0`).

>>> import torch
>>> from spinv.operators.noise import poisson_post_log
>>> sino = torch.full((1, 1, 4, 8), 10.0)
>>> y = poisson_post_log(sino, mu=0.05, photons=1e4, seed=0)
>>> bool((y - sino).abs().max() < 1.0)
True
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "make_generator",
    "complex_gaussian_noise",
    "gaussian_noise",
    "poisson_post_log",
    "default_mu",
    "DEFAULT_PHOTONS",
    "DEFAULT_ETA",
]

DEFAULT_PHOTONS = 1e4
DEFAULT_ETA = 1e-8


def make_generator(
    seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Generator | None:
    """Return ``generator`` if given, else a CPU generator seeded with ``seed`` (or ``None``).

    >>> g = make_generator(seed=3)
    >>> float(torch.rand(1, generator=g)) == float(torch.rand(1, generator=make_generator(3)))
    True
    """
    if generator is not None and seed is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator, got {type(generator).__name__}"
            )
        return generator
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
    check_seed(seed)
    return torch.Generator().manual_seed(seed)


def check_seed(seed: int, name: str = "--seed") -> int:
    """``seed`` if it is an integer in ``[0, 2**63)`` (what a torch generator accepts without
    wrapping); ``ValueError`` naming ``name`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"{name} {seed!r}: expected an integer from 0 to 2**63 - 1")
    return seed


def _gen_device(gen: torch.Generator | None) -> torch.device:
    return gen.device if gen is not None else torch.device("cpu")


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def _check_level(value, name: str, positive: bool = False, most: float | None = None) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {need}, got {value}")
    if most is not None and value > most:  # its square overflows float32 arithmetic
        raise ValueError(f"{name}={value:g}: at most {most:g}")
    return value


def complex_gaussian_noise(
    y: torch.Tensor,
    sigma: float,
    mask: torch.Tensor | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return :math:`y + S\\eta`, :math:`\\eta=\\sigma(n_1+i n_2)/\\sqrt2`, :math:`n_j\\sim N(0,I)`.

    ``sigma`` is the standard deviation of each complex entry (:math:`E|\\eta_i|^2=\\sigma^2`).
    ``mask`` (the sampling weights :math:`S`, broadcastable to ``y``) restricts and weights the
    noise as in :math:`y = S(Fu+\\eta)` (thesis §1.2.1); without it noise is added everywhere.
    Real ``y`` is promoted to complex.

    >>> import torch
    >>> y = torch.zeros(1, 1, 200, 200, dtype=torch.complex64)
    >>> n = complex_gaussian_noise(y, 0.5, seed=0)
    >>> abs(float(n.abs().pow(2).mean()) - 0.25) < 0.01
    True
    """
    _check_tensor(y, "y")
    sigma = _check_level(sigma, "sigma", most=1e15)
    gen = make_generator(seed, generator)
    if not y.is_complex():
        y = y.to(torch.complex128 if y.dtype == torch.float64 else torch.complex64)
    real = torch.float64 if y.dtype == torch.complex128 else torch.float32
    dev = _gen_device(gen)
    n1 = torch.randn(y.shape, generator=gen, dtype=real, device=dev)
    n2 = torch.randn(y.shape, generator=gen, dtype=real, device=dev)
    eta = torch.complex(n1, n2).to(y.device) * (sigma / math.sqrt(2.0))
    if mask is not None:
        _check_tensor(mask, "mask")
        eta = eta * mask.to(device=y.device, dtype=real)
    return y + eta


def gaussian_noise(
    x: torch.Tensor,
    sigma: float,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return ``x + sigma * n`` with real white Gaussian ``n`` (denoising, Gaussian CT data).

    >>> import torch
    >>> x = torch.zeros(1, 1, 100, 100)
    >>> abs(float(gaussian_noise(x, 0.1, seed=1).std()) - 0.1) < 0.005
    True
    """
    _check_tensor(x, "x")
    if x.is_complex():
        return complex_gaussian_noise(x, sigma, seed=seed, generator=generator)
    sigma = _check_level(sigma, "sigma", most=1e15)
    gen = make_generator(seed, generator)
    n = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=_gen_device(gen))
    return x + sigma * n.to(x.device)


def default_mu(image_size: int, fov_mm: float = 350.0, mu_per_mm: float = 0.04) -> float:
    """Base attenuation :math:`\\mu` for images in [0, 1] and pixel-unit line integrals.

    :math:`\\mu = \\mu_1\\,\\mathrm{fov}/N`: the attenuation (per mm) of an image value of 1
    times the pixel side in mm (see the module docstring for the derivation; thesis §2.5.1).

    >>> round(default_mu(512), 5)
    0.02734
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    fov_mm = _check_level(fov_mm, "fov_mm", positive=True)
    mu_per_mm = _check_level(mu_per_mm, "mu_per_mm", positive=True)
    return mu_per_mm * fov_mm / image_size


#: fraction of rays without a single detected photon above which simulation warns
STARVED_RAYS_WARNING = 0.01


MAX_PHOTONS = 2.0**53


def warn_if_starved(counts: torch.Tensor, mu: float, photons: float) -> float:
    """Warn when more than :data:`STARVED_RAYS_WARNING` of the rays detect no photon: their
    post-log values are clipped at the floor and every reconstruction streaks (e.g. a slice whose
    background is not air with the default ``mu``). Returns the starved fraction."""
    starved = float((counts < 1).double().mean()) if counts.numel() else 0.0
    if starved > STARVED_RAYS_WARNING:
        import warnings

        warnings.warn(
            f"{100 * starved:.1f}% of the CT rays detect no photon (mu={mu:.4g}, "
            f"photons={photons:.4g}): the data are photon-starved and reconstructions will "
            "streak; lower --mu (the image's attenuation scale) or raise --photons",
            UserWarning, stacklevel=3)
    return starved


def poisson_post_log(
    sinogram: torch.Tensor,
    mu: float,
    photons: float = DEFAULT_PHOTONS,
    eta: float = DEFAULT_ETA,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Low-dose post-log CT data (thesis §2.5.1): :math:`-\\frac1\\mu\\log\\max(n/N_{in},\\eta)`.

    ``sinogram`` holds the noiseless line integrals :math:`Ru` (any shape), ``mu`` the base
    attenuation (:func:`default_mu`), ``photons`` :math:`N_{in}` (mean unattenuated count per
    detector pixel), ``eta`` the floor inside the logarithm. Counts are drawn with
    :func:`torch.poisson` (float64 rates, so large counts are exact integers).
    """
    _check_tensor(sinogram, "sinogram")
    if sinogram.is_complex():
        raise TypeError(f"sinogram must be real, got dtype {sinogram.dtype}")
    mu = _check_level(mu, "mu", positive=True)
    photons = _check_level(photons, "photons", positive=True)
    if photons > MAX_PHOTONS:  # torch.poisson wraps to -2**63 beyond int64: all rays "starve"
        raise ValueError(f"photons={photons:g}: at most {MAX_PHOTONS:.4g} (2**53, the largest "
                         "count a float64 holds exactly; more is effectively noise-free)")
    eta = _check_level(eta, "eta", positive=True)
    if eta >= 1:
        raise ValueError(f"eta must lie in (0, 1), got {eta}")
    gen = make_generator(seed, generator)
    rates = photons * torch.exp(-mu * sinogram.detach().to(torch.float64))
    counts = torch.poisson(rates.to(_gen_device(gen)), generator=gen).to(sinogram.device)
    warn_if_starved(counts, mu, photons)
    frac = torch.clamp(counts / photons, min=eta)
    return (-torch.log(frac) / mu).to(sinogram.dtype)
