"""Finite-difference gradient and its adjoint (negative divergence).

Forward differences with zero Neumann boundary, as in thesis Appendix 1.C.2:
:math:`(\\nabla u)_{i,j} = (u_{i+1,j}-u_{i,j},\\; u_{i,j+1}-u_{i,j})`, with the difference set
to zero on the last row/column. Its norm satisfies :math:`\\|\\nabla\\|\\le\\sqrt 8`.

Images ``(B, C, H, W)`` map to gradients ``(B, C, 2, H, W)`` (axis 2: vertical, horizontal).

>>> import torch
>>> u = torch.randn(2, 1, 6, 7, dtype=torch.float64)
>>> p = torch.randn(2, 1, 2, 6, 7, dtype=torch.float64)
>>> lhs = (gradient(u) * p).sum(); rhs = (u * gradient_adjoint(p)).sum()
>>> bool(torch.allclose(lhs, rhs))
True
"""

from __future__ import annotations

import math

import torch

GRADIENT_NORM_BOUND = math.sqrt(8.0)


def gradient(u: torch.Tensor) -> torch.Tensor:
    """Forward-difference gradient, ``(B, C, H, W) -> (B, C, 2, H, W)``; works for complex ``u``."""
    if u.requires_grad and torch.is_grad_enabled():  # out= kernels are not differentiable
        g = u.new_zeros(u.shape[:-2] + (2,) + u.shape[-2:])
        g[..., 0, :-1, :] = u[..., 1:, :] - u[..., :-1, :]
        g[..., 1, :, :-1] = u[..., :, 1:] - u[..., :, :-1]
        return g
    g = torch.empty(u.shape[:-2] + (2,) + u.shape[-2:], dtype=u.dtype, device=u.device)
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=g[..., 0, :-1, :])
    g[..., 0, -1, :] = 0
    torch.sub(u[..., :, 1:], u[..., :, :-1], out=g[..., 1, :, :-1])
    g[..., 1, :, -1] = 0
    return g


def gradient_adjoint(p: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`gradient` (:math:`\\nabla^* = -\\mathrm{div}`).

    Shapes ``(B, C, 2, H, W) -> (B, C, H, W)``.
    """
    py, px = p[..., 0, :, :], p[..., 1, :, :]
    out = p.new_zeros(py.shape)
    out[..., :-1, :] -= py[..., :-1, :]
    out[..., 1:, :] += py[..., :-1, :]
    out[..., :, :-1] -= px[..., :, :-1]
    out[..., :, 1:] += px[..., :, :-1]
    return out


def divergence(p: torch.Tensor) -> torch.Tensor:
    """Discrete divergence, :math:`\\mathrm{div} = -\\nabla^*`."""
    return -gradient_adjoint(p)


def one_sided_difference(u: torch.Tensor, dim: int, forward: bool) -> torch.Tensor:
    """One-sided difference :math:`u_{i+1}-u_i` along ``dim``, zero Neumann boundary: stored at
    index :math:`i` (``forward``) or :math:`i+1` (backward), zero at the remaining end."""
    n = u.shape[dim]
    out = torch.zeros_like(u)
    d = u.narrow(dim, 1, n - 1) - u.narrow(dim, 0, n - 1)
    out.narrow(dim, 0 if forward else 1, n - 1).copy_(d)
    return out


def one_sided_difference_adjoint(q: torch.Tensor, dim: int, forward: bool) -> torch.Tensor:
    """The adjoint of :func:`one_sided_difference` (same ``dim`` and ``forward``)."""
    n = q.shape[dim]
    qq = q.narrow(dim, 0 if forward else 1, n - 1)
    out = torch.zeros_like(q)
    out.narrow(dim, 1, n - 1).add_(qq)
    out.narrow(dim, 0, n - 1).sub_(qq)
    return out
