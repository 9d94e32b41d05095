"""Spectral norms of convolutions: power iteration (estimate) and certified upper bounds.

Power iteration (thesis §3.3, after Miyato et al. 2018) on the *actual* zero-padded convolution
:math:`A` on a given image size, with :math:`A^T` its exact adjoint (``conv_transpose2d`` with
the same weights and padding):

.. math:: u_k \\leftarrow A^Tv_{k-1}/\\|A^Tv_{k-1}\\|,\\quad v_k \\leftarrow Au_k/\\|Au_k\\|,

converges from below: :math:`\\|Au\\|` with :math:`\\|u\\|=1` is a *lower* bound of
:math:`\\|A\\|`. The thesis rescales weights using this estimate; it cannot certify anything.

Certified *upper* bounds (beyond the thesis). Let :math:`K_t\\in\\mathbb R^{C_o\\times C_i}`,
:math:`t\\in\\{0..k_1-1\\}\\times\\{0..k_2-1\\}`, be the taps of a stride-1 convolution with zero
padding :math:`p` on images of size :math:`H\\times W`, and
:math:`\\hat K(\\omega)=\\sum_t K_t e^{i\\langle\\omega,t\\rangle}` its symbol.

1. *Zero padding is a restriction of circular convolution.* Embed the zero-padded input (size
   :math:`(H+2p)\\times(W+2p)`) in a periodic grid of size :math:`N=(H+2p, W+2p)`: every output
   index :math:`i\\le H+2p-k` reads :math:`i+t\\le N-1`, so nothing wraps and
   :math:`A = P\\,C_N\\,E` with :math:`E` an isometric embedding, :math:`P` a coordinate
   restriction (:math:`\\|E\\|,\\|P\\|\\le 1`) and :math:`C_N` circular convolution. Hence
   :math:`\\|A\\|\\le\\|C_N\\|`. The DFT block-diagonalises :math:`C_N`, so
   :math:`\\|C_N\\| = \\max_{\\omega\\in\\text{grid}_N}\\sigma_{\\max}(\\hat K(\\omega))` exactly
   (:func:`circular_conv_norm`). Images no larger than :math:`H\\times W` are restrictions again,
   so the bound covers them too.
2. *All image sizes at once.* For unit :math:`u, v` and phase :math:`\\varphi`,
   :math:`T(\\omega)=\\mathrm{Re}(e^{i\\varphi}u^H\\hat K(\\omega)v)` (after centring the taps,
   which only changes a unimodular factor) is a real trigonometric polynomial of band
   :math:`n_j=(k_j-1)/2` in axis :math:`j`. At a maximiser :math:`\\omega^*` of :math:`|T|`,
   :math:`T'=0` and Bernstein's inequality gives :math:`|T''|\\le n_j^2\\|T\\|_\\infty`, so the
   nearest of :math:`M_j` equispaced nodes (distance :math:`\\le\\pi/M_j`) has
   :math:`|T|\\ge(1-\\tfrac12(n_j\\pi/M_j)^2)\\|T\\|_\\infty`. Applying this per axis and taking
   the sup over :math:`u,v,\\varphi`:
   :math:`\\sup_\\omega\\sigma_{\\max}(\\hat K(\\omega))\\le c\\max_{\\text{grid}_M}
   \\sigma_{\\max}(\\hat K)`, :math:`c=\\prod_j(1-\\tfrac12(n_j\\pi/M_j)^2)^{-1}`, a bound valid
   for the convolution on every image size (:func:`conv_norm_upper_bound` with
   ``image_size=None``).

Per-frequency norms are computed in float64 (real kernels: half the spectrum by ``rfft2``) and
inflated by a relative ``1e-6`` to cover rounding.

>>> import torch
>>> w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0))
>>> est = conv_power_norm(w, padding=1, image_size=(8, 8), iterations=200)
>>> bound = conv_norm_upper_bound(w, padding=1, image_size=(8, 8))
>>> est <= bound <= conv_norm_upper_bound(w, padding=1)
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from spinv.linalg import power_iteration

__all__ = [
    "conv_op",
    "conv_adjoint",
    "power_iteration_step",
    "conv_power_norm",
    "circular_conv_norm",
    "bernstein_factor",
    "conv_norm_upper_bound",
    "conv_dense_matrix",
]

SAFETY = 1.0 + 1e-6


def _check_weight(weight: torch.Tensor) -> None:
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(
            f"weight: expected a (C_out, C_in, k1, k2) tensor, got "
            f"{getattr(weight, 'shape', type(weight))}"
        )


def conv_op(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """:math:`Ax`: stride-1 zero-padded convolution (PyTorch cross-correlation)."""
    return F.conv2d(x, weight, padding=padding)


def conv_adjoint(y: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """:math:`A^Ty`: the exact adjoint, ``conv_transpose2d`` with the same weight and padding."""
    return F.conv_transpose2d(y, weight, padding=padding)


@torch.no_grad()
def power_iteration_step(
    weight: torch.Tensor, u: torch.Tensor, padding: int, iterations: int = 1
) -> tuple[float, torch.Tensor]:
    """Warm-started power iteration on :math:`A^TA`; returns ``(||A u||, u_new)``.

    ``u`` is an input of shape ``(1, C_in, H, W)`` (normalised first); the returned estimate
    :math:`\\|Au\\|` (for the last unit ``u`` used) is a lower bound of :math:`\\|A\\|`.
    This is :func:`spinv.linalg.power_iteration` with :math:`A` and :math:`A^T`: the stateful
    form of spectral normalisation (one persistent vector per layer, a few steps after every
    training step) is the generic iteration warm-started from the stored vector, which the
    caller replaces by the returned one.
    """
    _check_weight(weight)
    w = weight.detach()
    res = power_iteration(
        lambda x: conv_op(x, w, padding),
        u.to(device=w.device, dtype=w.dtype),
        adjoint=lambda y: conv_adjoint(y, w, padding),
        iterations=max(int(iterations), 1),
    )
    return float(res.value), res.vector


def conv_power_norm(
    weight: torch.Tensor,
    padding: int,
    image_size: tuple[int, int],
    iterations: int = 100,
    seed: int = 0,
) -> float:
    """Power-iteration estimate (a lower bound) of the norm of the conv on ``image_size``."""
    _check_weight(weight)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn((1, weight.shape[1], *image_size), generator=gen, dtype=weight.dtype)
    sigma, _ = power_iteration_step(weight, u.to(weight.device), padding, iterations)
    return sigma


def circular_conv_norm(weight: torch.Tensor, grid: tuple[int, int]) -> float:
    """Exact norm of the *circular* convolution with ``weight`` on a ``grid`` periodic image:
    :math:`\\max_{\\omega}\\sigma_{\\max}(\\hat K(\\omega))` over the DFT grid (float64)."""
    _check_weight(weight)
    n1, n2 = int(grid[0]), int(grid[1])
    k1, k2 = weight.shape[-2:]
    if n1 < k1 or n2 < k2:
        raise ValueError(f"grid={grid}: must be at least the kernel size {(k1, k2)}")
    w = weight.detach().to(torch.float64)
    if w.is_complex():
        raise TypeError("circular_conv_norm: expected a real weight")
    khat = torch.fft.rfft2(w, s=(n1, n2)).permute(2, 3, 0, 1)  # (n1, n2//2+1, C_out, C_in)
    return float(torch.linalg.matrix_norm(khat, ord=2).max()) * SAFETY


def bernstein_factor(kernel_size: tuple[int, int], grid: tuple[int, int]) -> float:
    """:math:`c=\\prod_j (1-\\frac12(n_j\\pi/M_j)^2)^{-1}` with band :math:`n_j=(k_j-1)/2`."""
    c = 1.0
    for k, m in zip(kernel_size, grid, strict=True):
        n = (k - 1) / 2.0
        q = 0.5 * (n * math.pi / m) ** 2
        if q >= 1.0:
            raise ValueError(f"grid={grid} is too coarse for kernel size {kernel_size}")
        c /= 1.0 - q
    return c


def conv_norm_upper_bound(
    weight: torch.Tensor,
    padding: int = 1,
    image_size: tuple[int, int] | None = None,
    grid: int = 32,
) -> float:
    """Certified upper bound of the spectral norm of a stride-1 zero-padded convolution.

    With ``image_size=(H, W)``: the exact norm of the circular convolution on the
    ``(H+2p, W+2p)`` grid, valid for images up to ``H x W``. With ``image_size=None``: the
    grid-``M`` maximum times the Bernstein factor, valid for every image size (module doc).
    """
    _check_weight(weight)
    if padding < 0:
        raise ValueError(f"padding={padding}: expected a non-negative integer")
    k1, k2 = weight.shape[-2:]
    if k1 == 1 and k2 == 1:  # pointwise: the symbol is constant, the norm is that of the matrix
        mat = weight.detach().to(torch.float64)[:, :, 0, 0]
        return float(torch.linalg.matrix_norm(mat, ord=2)) * SAFETY
    if image_size is not None:
        h, w = int(image_size[0]), int(image_size[1])
        return circular_conv_norm(weight, (max(h + 2 * padding, k1), max(w + 2 * padding, k2)))
    if grid < max(k1, k2):
        raise ValueError(f"grid={grid}: expected at least the kernel size {max(k1, k2)}")
    return circular_conv_norm(weight, (grid, grid)) * bernstein_factor((k1, k2), (grid, grid))


def conv_dense_matrix(weight: torch.Tensor, padding: int, image_size: tuple[int, int]):
    """The convolution on ``image_size`` as a dense matrix (for tests on tiny sizes)."""
    _check_weight(weight)
    c_in = weight.shape[1]
    n = c_in * image_size[0] * image_size[1]
    eye = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, c_in, *image_size)
    cols = conv_op(eye, weight.detach(), padding).reshape(n, -1)
    return cols.T
