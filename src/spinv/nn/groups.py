"""Finite rotation/reflection groups :math:`H\\in\\{C_m, D_m\\}` acting on the plane and on fields.

The symmetry groups of thesis ch. 2 are :math:`G = \\mathbb{R}^2 \\rtimes H` with :math:`H` a finite
subgroup of :math:`O(2)`: the cyclic group :math:`C_m = \\{r^k\\}` of rotations by
:math:`2\\pi k/m` and the dihedral group :math:`D_m = \\{r^k s^f\\}` that adds the reflection
:math:`s`. Elements are indexed ``k + m f`` (``f = 0`` for rotations, ``1`` for reflections), and
:math:`r^k s^f` applies :math:`s` first. The multiplication is
:math:`(r^{k_1}s^{f_1})(r^{k_2}s^{f_2}) = r^{k_1 + (-1)^{f_1}k_2} s^{f_1 + f_2}`.

Conventions on a pixel grid (row ``i``, column ``j``, centre ``c``): the plane coordinates are
``x = j - c`` and ``y = c - i`` (``y`` points up), :math:`r` rotates counter-clockwise and :math:`s`
is the reflection :math:`x \\mapsto -x` (a left-right flip). A group element acts on a scalar
field by :math:`(T_g f)(p) = f(g^{-1}p)` and on a field of the regular representation
:math:`\\pi_{reg}(g)e_h = e_{gh}` (Eq. (2.6)) by
:math:`(T_g f)_h(p) = f_{g^{-1}h}(g^{-1}p)`. For rotations by multiples of 90 degrees this is exact
on the grid (``torch.rot90``, ``torch.flip``); :func:`transform` implements it.

Channels of a regular field stack are laid out field-major: channel ``n |H| + h`` holds group
component ``h`` of field ``n``.

>>> G = parse_group("D4")
>>> G.order, G.compose(1, 4), G.inverse(3)
(8, 5, 1)
>>> parse_group(None) is None, parse_group("C8").order
(True, 8)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class FiniteGroup:
    """The cyclic group :math:`C_m` (``reflections=False``) or dihedral group :math:`D_m`."""

    m: int
    reflections: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.m, int) or isinstance(self.m, bool) or self.m < 1:
            raise ValueError(f"m={self.m!r}: expected an integer >= 1 (number of rotations)")

    @property
    def name(self) -> str:
        return f"{'D' if self.reflections else 'C'}{self.m}"

    @property
    def order(self) -> int:
        """:math:`|H|`: ``m`` for :math:`C_m`, ``2m`` for :math:`D_m`."""
        return self.m * (2 if self.reflections else 1)

    @property
    def on_grid(self) -> bool:
        """True when every element maps the pixel grid to itself (``m`` divides 4)."""
        return 4 % self.m == 0

    def element(self, g: int) -> tuple[int, int]:
        """``(k, f)`` with :math:`g = r^k s^f`."""
        if not 0 <= g < self.order:
            raise ValueError(f"g={g!r}: expected an element index in [0, {self.order})")
        return g % self.m, g // self.m

    def index(self, k: int, f: int) -> int:
        return (k % self.m) + self.m * (f % 2 if self.reflections else 0)

    def compose(self, g1: int, g2: int) -> int:
        """Index of the product :math:`g_1 g_2`."""
        k1, f1 = self.element(g1)
        k2, f2 = self.element(g2)
        return self.index(k1 + (-1) ** f1 * k2, f1 + f2)

    def inverse(self, g: int) -> int:
        k, f = self.element(g)
        return self.index(-k, 0) if f == 0 else g

    def angle(self, g: int) -> float:
        """Rotation angle :math:`2\\pi k/m` of :math:`g = r^k s^f` (radians)."""
        return 2.0 * math.pi * self.element(g)[0] / self.m

    @cached_property
    def inverse_product_table(self) -> torch.Tensor:
        """``T[g, h]`` = index of :math:`g^{-1}h` (``LongTensor`` of shape ``(|H|, |H|)``)."""
        n = self.order
        return torch.tensor(
            [[self.compose(self.inverse(g), h) for h in range(n)] for g in range(n)],
            dtype=torch.long,
        )

    def act_on_points(self, g: int, x: torch.Tensor, y: torch.Tensor, inverse: bool = False):
        """Coordinates of :math:`gp` (:math:`g^{-1}p` if ``inverse``) for ``p = (x, y)``."""
        k, f = self.element(g)
        theta = 2.0 * math.pi * k / self.m
        c, s = math.cos(theta), math.sin(theta)
        if not inverse:  # g p = r^k (s^f p)
            if f:
                x = -x
            return c * x - s * y, s * x + c * y
        xr, yr = c * x + s * y, -s * x + c * y  # r^{-k} p, then s^f
        return (-xr if f else xr), yr


def parse_group(spec: str | FiniteGroup | None) -> FiniteGroup | None:
    """``None`` (ordinary CNN), ``"C<m>"``/``"D<m>"`` (any case) or a :class:`FiniteGroup`."""
    if spec is None or isinstance(spec, FiniteGroup):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"group={spec!r}: expected None, 'C<m>' or 'D<m>' (e.g. 'C4', 'D4')")
    match = re.fullmatch(r"\s*([CcDd])(\d+)\s*", spec)
    if match is None or int(match.group(2)) < 1:
        raise ValueError(f"group={spec!r}: expected None, 'C<m>' or 'D<m>' with m >= 1")
    return FiniteGroup(int(match.group(2)), match.group(1).upper() == "D")


def transform_image(x: torch.Tensor, group: FiniteGroup, g: int) -> torch.Tensor:
    """:math:`(T_g f)(p) = f(g^{-1}p)` on the last two axes, exact for on-grid groups."""
    if not group.on_grid:
        raise ValueError(
            f"group={group.name}: exact grid transforms need m in (1, 2, 4); use an "
            "interpolating rotation for other angles"
        )
    k, f = group.element(g)
    if f:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k * (4 // group.m), dims=(-2, -1))


def transform(x: torch.Tensor, group: FiniteGroup, g: int, field: str = "trivial") -> torch.Tensor:
    """Action of :math:`g` on a ``(B, C, H, W)`` stack of fields of type ``field``.

    Regular fields are permuted along the group axis, :math:`(T_gf)_h = T_g[f_{g^{-1}h}]`.

    >>> G = parse_group("C4")
    >>> x = torch.arange(2 * 4 * 9.0).reshape(1, 8, 3, 3)
    >>> y = transform(transform(x, G, 1, "regular"), G, 3, "regular")
    >>> torch.equal(x, y)
    True
    """
    if field == "trivial":
        return transform_image(x, group, g)
    if field != "regular":
        raise ValueError(f"field={field!r}: expected 'trivial' or 'regular'")
    b, c, h, w = x.shape
    if c % group.order:
        raise ValueError(f"x has {c} channels, not a multiple of |H| = {group.order}")
    idx = group.inverse_product_table[g].to(x.device)
    x = x.reshape(b, c // group.order, group.order, h, w).index_select(2, idx)
    return transform_image(x.reshape(b, c, h, w), group, g)
