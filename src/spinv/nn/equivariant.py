"""Group convolutions for :math:`G = \\mathbb{R}^2 \\rtimes H`, :math:`H\\in\\{C_m, D_m\\}` (§2.3).

By Prop. 2.3.1 a linear map between fields is :math:`G`-equivariant iff it is a convolution whose
kernel satisfies Eq. (2.8), :math:`k(Rx) = \\pi_Y(R)\\,k(x)\\,\\pi_X(R^{-1})`. For the trivial and
regular representations its solutions are obtained from one free filter per (output field,
input field[, input group component]) by transforming it with :math:`T_g` and permuting the group
axis (layout and action in :mod:`spinv.nn.groups`):

* :class:`LiftingConv` (trivial → regular): :math:`k_{(o,g),i} = T_g W_{o,i}`;
* :class:`GroupConv` (regular → regular): :math:`k_{(o,g),(i,h)} = T_g W_{o,i,g^{-1}h}`;
* :class:`ProjectionConv` (regular → trivial): :math:`k_{o,(i,h)} = T_h W_{o,i}` (the mean over
  the group axis followed by a convolution is the special case of a :math:`T_h`-invariant ``W``).

Each free filter is expanded in a basis :math:`W = \\sum_j c_j B_j` whose transformed copies
:math:`T_gB_j` are tabulated once (:mod:`spinv.nn.steerable`), so the full filter bank is one
matrix product of the coefficients with a precomputed expansion matrix (the table with the
group-axis permutation folded in), built once per forward pass and applied with a single
``conv2d``; :meth:`export` folds it into a plain ``nn.Conv2d`` (the test-time equivalence
noted after Eq. (2.8)). Biases are invariant: one per output field, shared across the group axis.

Initialisation generalises He et al. (2015) as in Weiler et al. (2018): coefficients are normal
with variance :math:`\\mathrm{gain}^2 / (C_{in}\\sum_j\\|B_j\\|^2)` (:math:`C_{in}` the number of
ordinary input channels), so that the expanded filters have the expected energy of an ordinary
He-initialised filter; for the pixel basis this *is* He initialisation.

Nonlinearities: any pointwise function is equivariant on regular fields (Lemma 2.3.2), e.g.
``nn.LeakyReLU``; :class:`NormNonlinearity` implements Lemma 2.3.3.

>>> import torch
>>> from spinv.nn.groups import parse_group, transform
>>> G = parse_group("C4")
>>> net = torch.nn.Sequential(LiftingConv(1, 2, G), torch.nn.LeakyReLU(0.01),
...                           GroupConv(2, 2, G), ProjectionConv(2, 1, G))
>>> x = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
>>> bool(torch.allclose(net(transform(x, G, 1)), transform(net(x), G, 1), atol=1e-5))
True
>>> plain = export_module(net)
>>> bool(torch.allclose(plain(x), net(x), atol=1e-5)), type(plain[0]).__name__
(True, 'Conv2d')
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from spinv.nn.groups import FiniteGroup, parse_group
from spinv.nn.steerable import filter_basis

LEAKY_RELU_GAIN = math.sqrt(2.0 / (1.0 + 0.01**2))
#: gain of PyTorch's default ``nn.Conv2d`` initialisation (``kaiming_uniform_`` with ``a=sqrt(5)``)
TORCH_DEFAULT_GAIN = math.sqrt(1.0 / 3.0)


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return value


class _EquivariantConv(nn.Module):
    """Shared machinery; subclasses fix the input/output field types."""

    in_regular: bool = False
    out_regular: bool = False
    free_group_axis: bool = False  # one free filter per input group component (GroupConv)

    def __init__(
        self,
        in_fields: int,
        out_fields: int,
        group: FiniteGroup | str,
        kernel_size: int = 3,
        bias: bool = True,
        basis: str = "auto",
        gain: float = LEAKY_RELU_GAIN,
        zero_init: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        group = parse_group(group)
        if group is None:
            raise ValueError("group=None: equivariant convolutions need a group such as 'C4'")
        self.group = group
        self.in_fields = _positive_int("in_fields", in_fields)
        self.out_fields = _positive_int("out_fields", out_fields)
        self.kernel_size = kernel_size
        table = filter_basis(group, kernel_size, basis).to(torch.float32)
        self.register_buffer("basis", table, persistent=False)  # (|H|, J, k, k)
        n = group.order
        self.in_channels = in_fields * (n if self.in_regular else 1)
        self.out_channels = out_fields * (n if self.out_regular else 1)
        n_basis = table.shape[1]
        shape = (out_fields, in_fields) + ((n,) if self.free_group_axis else ()) + (n_basis,)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None
        expansion = self._expansion_matrix(table, group).to(torch.float32)
        self.register_buffer("expansion", expansion, persistent=False)
        # pixel bases give a 0/1 matrix with one 1 per column: expansion is then a pure gather
        is_gather = bool(
            ((expansion == 0) | (expansion == 1)).all() and (expansion.sum(0) == 1).all()
        )
        gather = expansion.argmax(0) if is_gather else None
        self.register_buffer("gather_index", gather, persistent=False)
        self.reset_parameters(gain=gain, zero=zero_init, generator=generator)

    @torch.no_grad()
    def reset_parameters(
        self, gain: float = LEAKY_RELU_GAIN, zero: bool = False, generator=None
    ) -> None:
        """Generalised He initialisation (see module docstring); ``zero=True`` zeroes everything."""
        if self.bias is not None:
            self.bias.zero_()
        if zero:
            self.weight.zero_()
            return
        energy = float(self.basis[0].pow(2).sum())
        std = gain / math.sqrt(self.in_channels * energy)
        w = torch.randn(self.weight.shape, generator=generator, dtype=torch.float32)
        self.weight.copy_(w.to(self.weight.device) * std)

    @staticmethod
    def _expansion_matrix(basis: torch.Tensor, group: FiniteGroup) -> torch.Tensor:
        """``M`` with ``expanded[o, i] = weight[o, i] @ M`` laid out ``(n_out, n_in, k, k)``."""
        # trivial -> regular (lifting) and regular -> trivial (projection): M[j, (g, x, y)]
        return basis.permute(1, 0, 2, 3).reshape(basis.shape[1], -1)

    def expanded_weight(self) -> torch.Tensor:
        """The full ``(C_out, C_in, k, k)`` filter bank: one matmul with the expansion matrix."""
        k, n = self.kernel_size, self.group.order
        n_out, n_in = (n if self.out_regular else 1), (n if self.in_regular else 1)
        o, i = self.out_fields, self.in_fields
        flat = self.weight.reshape(o * i, -1)
        if self.gather_index is not None:
            w = flat.index_select(1, self.gather_index)
        else:
            w = flat @ self.expansion
        w = w.reshape(o, i, n_out, n_in * k * k).transpose(1, 2)
        return w.reshape(self.out_channels, self.in_channels, k, k)

    def expanded_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        if self.out_regular:
            return self.bias.repeat_interleave(self.group.order)
        return self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x has shape {tuple(x.shape)}: expected (B, {self.in_channels}, H, W)"
            )
        return F.conv2d(
            x, self.expanded_weight(), self.expanded_bias(), padding=self.kernel_size // 2
        )

    @torch.no_grad()
    def export(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the expanded filter bank (identical outputs)."""
        w = self.expanded_weight()
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            padding=self.kernel_size // 2,
            bias=self.bias is not None,
            device=w.device,
            dtype=w.dtype,
        )
        conv.weight.copy_(w)
        if self.bias is not None:
            conv.bias.copy_(self.expanded_bias())
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_fields}->{self.out_fields} fields, group={self.group.name}, "
            f"k={self.kernel_size}, basis={self.basis.shape[1]}"
        )


class LiftingConv(_EquivariantConv):
    """Trivial → regular: ``(B, in_fields, H, W)`` → ``(B, out_fields*|H|, H, W)``."""

    in_regular, out_regular = False, True


class GroupConv(_EquivariantConv):
    """Regular → regular: ``(B, in_fields*|H|, H, W)`` → ``(B, out_fields*|H|, H, W)``."""

    in_regular, out_regular, free_group_axis = True, True, True

    @staticmethod
    def _expansion_matrix(basis: torch.Tensor, group: FiniteGroup) -> torch.Tensor:
        # M[(h', j), (g, h, x, y)] = [h' = g^{-1}h] (T_g B_j)(x, y)
        n, n_basis = basis.shape[:2]
        onehot = F.one_hot(group.inverse_product_table, n).to(basis.dtype)  # (g, h, h')
        m = torch.einsum("ghp,gjxy->pjghxy", onehot, basis)
        return m.reshape(n * n_basis, -1)


class ProjectionConv(_EquivariantConv):
    """Regular → trivial: ``(B, in_fields*|H|, H, W)`` → ``(B, out_fields, H, W)``."""

    in_regular, out_regular = True, False


class NormNonlinearity(nn.Module):
    """Norm nonlinearity of Lemma 2.3.3 on regular fields: :math:`f \\mapsto f\\,\\phi(\\|f\\|)`.

    The norm is taken over the group axis of each field (``pi_reg`` is a permutation, hence
    unitary); :math:`\\phi(t) = \\mathrm{relu}(t + b)/t` with a learnable bias :math:`b` per field.
    """

    def __init__(self, n_fields: int, group: FiniteGroup | str, eps: float = 1e-6) -> None:
        super().__init__()
        group = parse_group(group)
        if group is None:
            raise ValueError("group=None: expected a group such as 'C4'")
        self.group = group
        self.n_fields = _positive_int("n_fields", n_fields)
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(n_fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != self.n_fields * self.group.order:
            raise ValueError(
                f"x has {c} channels: expected n_fields*|H| = {self.n_fields * self.group.order}"
            )
        f = x.reshape(b, self.n_fields, self.group.order, h, w)
        norm = f.pow(2).sum(dim=2, keepdim=True).add(self.eps**2).sqrt()
        scale = F.relu(norm + self.bias.view(1, -1, 1, 1, 1)) / norm
        return (f * scale).reshape(b, c, h, w)


def export_module(module: nn.Module, share: tuple[nn.Module, ...] = ()) -> nn.Module:
    """A deep copy of ``module`` with every equivariant convolution replaced by its ``export()``.

    The copy computes the same function with ordinary convolutions only. Submodules listed in
    ``share`` (e.g. a forward operator) are not copied but shared with the original.
    """
    if isinstance(module, _EquivariantConv):
        return module.export()
    out = copy.deepcopy(module, memo={id(m): m for m in share})

    def replace(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, _EquivariantConv):
                setattr(parent, name, child.export())
            else:
                replace(child)

    replace(out)
    return out
