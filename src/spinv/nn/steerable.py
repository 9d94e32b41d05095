"""Filter bases whose transformed copies :math:`T_g B_j` are known exactly.

A group convolution (:mod:`spinv.nn.equivariant`) parametrises each filter in a basis
:math:`\\{B_j\\}` and needs the transformed basis :math:`T_gB_j = B_j\\circ g^{-1}` for every
:math:`g \\in H`. Two bases are provided; both return a tensor ``basis[g, j, u, v]`` of shape
``(|H|, J, k, k)``:

* :func:`pixel_basis` (on-grid groups, ``m`` dividing 4): the :math:`k^2` pixel indicators,
  transformed with ``torch.rot90``/``torch.flip``. The filters are unconstrained and every
  :math:`T_g` is an exact permutation of pixels, so the resulting convolutions are exactly
  equivariant on the grid.
* :func:`steerable_basis` (any ``m``): circular harmonics times Gaussian radial rings,
  :math:`B_{r_0,n}(r,\\theta) = e^{-(r-r_0)^2/(2\\sigma^2)}\\{\\cos n\\theta,\\sin n\\theta\\}`,
  sampled on the :math:`k\\times k` grid (the recipe after Eq. (2.8), following Weiler & Cesa
  2019). Because :math:`\\cos n(\\theta-\\alpha)` and :math:`\\sin n(\\theta-\\alpha)` lie in
  the span of :math:`\\cos n\\theta,\\sin n\\theta` (a reflection only flips the sine's sign), the
  span is closed under :math:`O(2)`: the rotated copies are evaluated analytically at
  :math:`g^{-1}p`, never interpolated. Equivariance to rotations by :math:`2\\pi/m` is then exact
  in the continuum and approximate after sampling (the discretisation issue of thesis §2.6).

>>> from spinv.nn.groups import parse_group
>>> pixel_basis(parse_group("C4"), 3).shape
torch.Size([4, 9, 3, 3])
>>> B = steerable_basis(parse_group("C8"), 3)
>>> B.shape  # rings r=0 (n=0) and r=1 (n=0; n=1 with cos and sin)
torch.Size([8, 4, 3, 3])
"""

from __future__ import annotations

import math

import torch

from spinv.nn.groups import FiniteGroup, transform_image


def _check_kernel_size(kernel_size: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size!r}: expected an odd integer >= 1")


def pixel_basis(group: FiniteGroup, kernel_size: int) -> torch.Tensor:
    """Transformed pixel indicators ``(|H|, k*k, k, k)`` (float64); needs ``group.on_grid``."""
    _check_kernel_size(kernel_size)
    if not group.on_grid:
        raise ValueError(
            f"group={group.name}: the pixel basis is exact only for m in (1, 2, 4); "
            "use basis='steerable'"
        )
    k = kernel_size
    deltas = torch.eye(k * k, dtype=torch.float64).reshape(k * k, k, k)
    return torch.stack([transform_image(deltas, group, g) for g in range(group.order)])


def default_frequency_cutoff(radius: float) -> int:
    """Highest angular frequency on the ring of radius ``radius``: 0 at the centre, else
    :math:`\\max(1, \\lfloor r \\rfloor)`.

    Higher frequencies alias on small rings: on a 3x3 grid, frequency 2 on the unit ring mixes
    axis and diagonal pixels (at different radii), and in our measurements roughly doubled the
    45-degree equivariance defect of C8 networks compared with this cutoff.
    """
    return 0 if radius == 0 else max(1, int(math.floor(radius)))


def steerable_basis(
    group: FiniteGroup,
    kernel_size: int,
    sigma: float = 0.6,
    radii: tuple[float, ...] | None = None,
    max_frequency=default_frequency_cutoff,
) -> torch.Tensor:
    """Circular-harmonic basis, analytically transformed by every group element.

    Returns ``(|H|, J, k, k)`` (float64). ``radii`` defaults to ``0, 1, ..., k // 2``;
    ``max_frequency(r)`` bounds the angular frequency on each ring. Each untransformed basis
    filter has unit Euclidean norm. Rings whose sampled profile vanishes are dropped.
    """
    _check_kernel_size(kernel_size)
    if not sigma > 0:
        raise ValueError(f"sigma={sigma!r}: expected a positive ring width")
    k = kernel_size
    c = (k - 1) / 2
    if radii is None:
        radii = tuple(float(r) for r in range(k // 2 + 1))
    ii, jj = torch.meshgrid(
        torch.arange(k, dtype=torch.float64), torch.arange(k, dtype=torch.float64), indexing="ij"
    )
    x, y = jj - c, c - ii
    specs = []
    for r0 in radii:
        for n in range(max_frequency(r0) + 1):
            specs.append((r0, n, "cos"))
            if n > 0:
                specs.append((r0, n, "sin"))

    def evaluate(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        r = torch.sqrt(px**2 + py**2)
        theta = torch.atan2(py, px)
        out = []
        for r0, n, kind in specs:
            ring = torch.exp(-((r - r0) ** 2) / (2 * sigma**2))
            ang = torch.cos(n * theta) if kind == "cos" else torch.sin(n * theta)
            if n > 0:  # the angle is undefined at the origin; a harmonic of order n > 0 is 0 there
                ang = torch.where(r > 1e-12, ang, torch.zeros_like(ang))
            out.append(ring * ang)
        return torch.stack(out)

    base = evaluate(x, y)
    norms = base.reshape(len(specs), -1).norm(dim=1)
    keep = norms > 1e-6
    if not bool(keep.any()):
        raise ValueError(f"radii={radii!r}: no basis function is supported on the {k}x{k} grid")
    copies = []
    for g in range(group.order):
        gx, gy = group.act_on_points(g, x, y, inverse=True)
        copies.append(evaluate(gx, gy)[keep] / norms[keep, None, None])
    return torch.stack(copies)


def filter_basis(group: FiniteGroup, kernel_size: int, basis: str = "auto") -> torch.Tensor:
    """``basis='auto'``: :func:`pixel_basis` for on-grid groups, else :func:`steerable_basis`."""
    if basis == "auto":
        basis = "pixel" if group.on_grid else "steerable"
    if basis == "pixel":
        return pixel_basis(group, kernel_size)
    if basis == "steerable":
        return steerable_basis(group, kernel_size)
    raise ValueError(f"basis={basis!r}: expected 'auto', 'pixel' or 'steerable'")
