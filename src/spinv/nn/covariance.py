r"""Structured Gaussian covariances :math:`\Sigma` for image-valued decoders.

A VAE decoder of the type used in the generative regularisers of Duff et al. (talk 002, slide
"Modelling the Covariance") returns, for a latent :math:`z`, a mean :math:`G(z)` and a covariance
:math:`\Sigma(z)` over the :math:`n = HW` pixels of an image, so that
:math:`u \mid z \sim \mathcal N(G(z), \Sigma(z))`. The regulariser and the ELBO need

* :math:`\log\det\Sigma` (:meth:`Covariance.logdet`),
* the Mahalanobis norm :math:`\|r\|^2_{\Sigma^{-1}} = r^\top\Sigma^{-1}r`
  (:meth:`Covariance.mahalanobis`) and the product :math:`\Sigma^{-1}r`
  (:meth:`Covariance.apply_precision`),

all without ever forming the :math:`n\times n` matrix. Four parametrisations are provided, each
positive definite *by construction* (a positive diagonal plus a positive semidefinite part, or
the Gram matrix of an invertible triangular factor):

``ScaledIdentity``
    :math:`\Sigma = \gamma I`, one learned :math:`\gamma>0` ("constant diagonal / identity").
``Diagonal``
    :math:`\Sigma(z) = \mathrm{diag}(\sigma^2(z))` ("varying diagonal").
``LowRankPlusDiagonal``
    :math:`\Sigma(z) = D(z) + V(z)V(z)^\top` with :math:`V\in\mathbb R^{n\times r}`; log-det by
    the matrix-determinant lemma and solves by the Woodbury identity, both through the
    :math:`r\times r` capacitance matrix :math:`C = I_r + V^\top D^{-1}V`.
``CholeskyPrecision``
    a sparse precision :math:`\Sigma^{-1}(z) = L(z)L(z)^\top` with :math:`L` lower triangular in
    raster order, positive diagonal :math:`e^{d_p}` and non-zeros only between a pixel and its
    *causal* neighbours inside a :math:`(2\rho+1)^2` window (the structured model of Duff et al.,
    PMB 2023, after Dorta et al. 2018). Then :math:`\log\det\Sigma = -2\sum_p d_p` and
    :math:`\|r\|^2_{\Sigma^{-1}} = \|L^\top r\|^2`, both :math:`O(n\rho^2)`.

Tensors carry a batch axis: a covariance for images ``(B, 1, H, W)`` returns ``(B,)`` log-dets
and Mahalanobis norms. Everything is differentiable and follows the input's dtype and device.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> d = 0.1 * torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
>>> w = 0.3 * torch.randn(2, 4, 4, 4, generator=g, dtype=torch.float64)
>>> cov = CholeskyPrecision(d, w, radius=1)
>>> S = cov.dense()                                  # (2, 16, 16) reference matrix
>>> bool(torch.allclose(cov.logdet(), torch.linalg.slogdet(S)[1]))
True
>>> r = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
>>> ref = torch.linalg.solve(S, r.reshape(2, 16, 1)).reshape(2, 1, 4, 4)
>>> bool(torch.allclose(cov.apply_precision(r), ref))
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "Covariance",
    "ScaledIdentity",
    "Diagonal",
    "LowRankPlusDiagonal",
    "CholeskyPrecision",
    "causal_offsets",
    "shift",
]


def _check_image(name: str, x: torch.Tensor, channels: int | None = 1) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        want = f"(B, {channels}, H, W)" if channels is not None else "(B, K, H, W)"
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {want}")


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class Covariance:
    """A batch of covariance matrices :math:`\\Sigma_b` acting on images ``(B, 1, H, W)``.

    Subclasses implement :meth:`logdet`, :meth:`apply_precision`, :meth:`apply` and
    :meth:`sample`; :meth:`mahalanobis` defaults to :math:`\\langle r, \\Sigma^{-1} r\\rangle`.
    """

    shape: tuple[int, int, int, int]

    def logdet(self) -> torch.Tensor:  # pragma: no cover - abstract
        """:math:`\\log\\det\\Sigma_b`, shape ``(B,)``."""
        raise NotImplementedError

    def apply_precision(self, r: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """:math:`\\Sigma^{-1} r` for ``r`` of shape ``(B, 1, H, W)``."""
        raise NotImplementedError

    def apply(self, r: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """:math:`\\Sigma r` for ``r`` of shape ``(B, 1, H, W)``."""
        raise NotImplementedError

    def sample_noise(self, eps: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Map standard normal ``eps`` (shape :meth:`noise_shape`) to noise of covariance
        :math:`\\Sigma`."""
        raise NotImplementedError

    def noise_shape(self) -> tuple[int, ...]:
        return self.shape

    def mahalanobis(self, r: torch.Tensor) -> torch.Tensor:
        """:math:`r^\\top\\Sigma^{-1}r` per batch element, shape ``(B,)``."""
        self._check(r)
        return _flat(r * self.apply_precision(r)).sum(dim=1)

    def nll(self, r: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood of the residual ``r``:
        :math:`\\tfrac12 r^\\top\\Sigma^{-1}r + \\tfrac12\\log\\det\\Sigma
        + \\tfrac n2\\log 2\\pi`."""
        n = r[0].numel()
        return 0.5 * self.mahalanobis(r) + 0.5 * self.logdet() + 0.5 * n * math.log(2 * math.pi)

    def sample(
        self, mean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw of :math:`\\mathcal N(\\mathrm{mean}, \\Sigma)` (seeded by ``generator``)."""
        eps = torch.randn(
            self.noise_shape(), generator=generator, dtype=mean.dtype, device="cpu"
        ).to(mean.device)
        return mean + self.sample_noise(eps)

    def dense(self) -> torch.Tensor:
        """The matrices :math:`\\Sigma_b` as a dense ``(B, n, n)`` tensor (small sizes only)."""
        B, _, H, W = self.shape
        n = H * W
        ref = self._ref()
        eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
        cols = []
        for b in range(B):
            sub = self._select(b)
            cols.append(_flat(sub.apply(eye.reshape(n, 1, H, W))).T)
        return torch.stack(cols)

    def dense_precision(self) -> torch.Tensor:
        """The matrices :math:`\\Sigma_b^{-1}` as a dense ``(B, n, n)`` tensor."""
        B, _, H, W = self.shape
        n = H * W
        ref = self._ref()
        eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
        cols = []
        for b in range(B):
            sub = self._select(b)
            cols.append(_flat(sub.apply_precision(eye.reshape(n, 1, H, W))).T)
        return torch.stack(cols)

    # helpers -------------------------------------------------------------------------------
    def _ref(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select(self, b: int) -> Covariance:  # pragma: no cover - abstract
        """The covariance of batch element ``b``, broadcast over any batch size."""
        raise NotImplementedError

    def _check(self, r: torch.Tensor) -> None:
        _check_image("r", r)
        if tuple(r.shape[-2:]) != tuple(self.shape[-2:]):
            raise ValueError(
                f"r has image size {tuple(r.shape[-2:])}; expected {tuple(self.shape[-2:])}"
            )


class ScaledIdentity(Covariance):
    """:math:`\\Sigma = \\gamma I` with :math:`\\gamma = e^{\\ell}`; ``log_gamma`` is a scalar or
    ``(B,)`` tensor and ``shape`` the image shape ``(B, 1, H, W)``.

    >>> import torch
    >>> c = ScaledIdentity(torch.tensor(math.log(4.0)), (1, 1, 2, 2))
    >>> round(float(c.logdet()[0]), 4), round(float(c.mahalanobis(torch.ones(1, 1, 2, 2))[0]), 4)
    (5.5452, 1.0)
    """

    def __init__(self, log_gamma: torch.Tensor, shape: tuple[int, int, int, int]):
        if not isinstance(log_gamma, torch.Tensor):
            raise TypeError(f"log_gamma must be a torch.Tensor, got {type(log_gamma).__name__}")
        if len(shape) != 4 or shape[1] != 1:
            raise ValueError(f"shape={tuple(shape)}; expected (B, 1, H, W)")
        self.log_gamma = log_gamma.reshape(-1).expand(shape[0]).reshape(shape[0], 1, 1, 1)
        self.shape = tuple(int(s) for s in shape)

    def logdet(self) -> torch.Tensor:
        n = self.shape[2] * self.shape[3]
        return n * self.log_gamma.reshape(-1)

    def apply_precision(self, r: torch.Tensor) -> torch.Tensor:
        return r * torch.exp(-self.log_gamma)

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return r * torch.exp(self.log_gamma)

    def sample_noise(self, eps: torch.Tensor) -> torch.Tensor:
        return eps * torch.exp(0.5 * self.log_gamma)

    def _ref(self) -> torch.Tensor:
        return self.log_gamma

    def _select(self, b: int) -> ScaledIdentity:
        return ScaledIdentity(self.log_gamma[b].reshape(()), (1,) + self.shape[1:])


class Diagonal(Covariance):
    """:math:`\\Sigma = \\mathrm{diag}(e^{s})` from a log-variance map ``log_var`` ``(B,1,H,W)``.

    >>> import torch
    >>> c = Diagonal(torch.zeros(1, 1, 2, 2))
    >>> float(c.logdet()[0]), float(c.mahalanobis(2 * torch.ones(1, 1, 2, 2))[0])
    (0.0, 16.0)
    """

    def __init__(self, log_var: torch.Tensor):
        _check_image("log_var", log_var)
        self.log_var = log_var
        self.shape = tuple(log_var.shape)

    def logdet(self) -> torch.Tensor:
        return _flat(self.log_var).sum(dim=1)

    def apply_precision(self, r: torch.Tensor) -> torch.Tensor:
        return r * torch.exp(-self.log_var)

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return r * torch.exp(self.log_var)

    def sample_noise(self, eps: torch.Tensor) -> torch.Tensor:
        return eps * torch.exp(0.5 * self.log_var)

    def _ref(self) -> torch.Tensor:
        return self.log_var

    def _select(self, b: int) -> Diagonal:
        return Diagonal(self.log_var[b : b + 1])


class LowRankPlusDiagonal(Covariance):
    """:math:`\\Sigma = D + VV^\\top`, ``log_d`` ``(B,1,H,W)``
    (so :math:`D = \\mathrm{diag}(e^{d})`)
    and factor images ``factors`` ``(B, r, H, W)`` (the columns of :math:`V`).

    With the capacitance :math:`C = I_r + V^\\top D^{-1} V = R R^\\top` (Cholesky),
    :math:`\\log\\det\\Sigma = \\sum_p d_p + 2\\sum_k\\log R_{kk}` (determinant lemma) and
    :math:`\\Sigma^{-1} = D^{-1} - D^{-1}V C^{-1} V^\\top D^{-1}` (Woodbury).
    """

    def __init__(self, log_d: torch.Tensor, factors: torch.Tensor):
        _check_image("log_d", log_d)
        _check_image("factors", factors, channels=None)
        if factors.shape[0] != log_d.shape[0] or factors.shape[-2:] != log_d.shape[-2:]:
            raise ValueError(
                f"factors has shape {tuple(factors.shape)}; expected (B, r, H, W) with "
                f"B, H, W of log_d {tuple(log_d.shape)}"
            )
        self.log_d = log_d
        self.factors = factors
        self.shape = tuple(log_d.shape)
        self.rank = factors.shape[1]
        B = log_d.shape[0]
        self._V = factors.reshape(B, self.rank, -1).transpose(1, 2)  # (B, n, r)
        self._dinv = torch.exp(-_flat(log_d))  # (B, n)
        eye = torch.eye(self.rank, dtype=log_d.dtype, device=log_d.device)
        cap = eye + self._V.transpose(1, 2) @ (self._dinv.unsqueeze(-1) * self._V)
        self._chol = torch.linalg.cholesky(cap)

    def logdet(self) -> torch.Tensor:
        diag = torch.diagonal(self._chol, dim1=-2, dim2=-1)
        return _flat(self.log_d).sum(dim=1) + 2 * torch.log(diag).sum(dim=1)

    def apply_precision(self, r: torch.Tensor) -> torch.Tensor:
        rf = _flat(r) * self._dinv  # D^{-1} r, (B', n)
        B = rf.shape[0]
        V = self._V.expand(B, -1, -1) if self._V.shape[0] == 1 else self._V
        chol = self._chol.expand(B, -1, -1) if self._chol.shape[0] == 1 else self._chol
        dinv = self._dinv.expand(B, -1) if self._dinv.shape[0] == 1 else self._dinv
        t = torch.cholesky_solve((V.transpose(1, 2) @ rf.unsqueeze(-1)), chol)
        out = rf - dinv * (V @ t).squeeze(-1)
        return out.reshape(r.shape)

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        rf = _flat(r)
        B = rf.shape[0]
        V = self._V.expand(B, -1, -1) if self._V.shape[0] == 1 else self._V
        d = torch.exp(_flat(self.log_d))
        d = d.expand(B, -1) if d.shape[0] == 1 else d
        out = d * rf + (V @ (V.transpose(1, 2) @ rf.unsqueeze(-1))).squeeze(-1)
        return out.reshape(r.shape)

    def noise_shape(self) -> tuple[int, ...]:
        B, _, H, W = self.shape
        return (B, 1 + self.rank, H, W)  # pixel noise, then r latent draws (in the first pixels)

    def sample_noise(self, eps: torch.Tensor) -> torch.Tensor:
        B = eps.shape[0]
        pix = eps[:, :1] * torch.exp(0.5 * self.log_d)
        lat = eps[:, 1:, 0, 0].unsqueeze(-1)  # (B, r, 1)
        return pix + (self._V @ lat).reshape(B, 1, *self.shape[-2:])

    def _ref(self) -> torch.Tensor:
        return self.log_d

    def _select(self, b: int) -> LowRankPlusDiagonal:
        return LowRankPlusDiagonal(self.log_d[b : b + 1], self.factors[b : b + 1])


def causal_offsets(radius: int) -> list[tuple[int, int]]:
    """Offsets :math:`o=(\\delta_r,\\delta_c)` in the :math:`(2\\rho+1)^2` window that come *after*
    a pixel in raster order (:math:`\\delta_r>0`, or :math:`\\delta_r=0,\\delta_c>0`).

    >>> causal_offsets(1)
    [(0, 1), (1, -1), (1, 0), (1, 1)]
    """
    if not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius={radius!r}; expected an integer >= 0")
    out = [(0, dc) for dc in range(1, radius + 1)]
    out += [(dr, dc) for dr in range(1, radius + 1) for dc in range(-radius, radius + 1)]
    return out


def shift(x: torch.Tensor, dr: int, dc: int) -> torch.Tensor:
    """``out[..., i, j] = x[..., i + dr, j + dc]``, zero where that pixel is outside the image."""
    H, W = x.shape[-2:]
    pad = (max(-dc, 0), max(dc, 0), max(-dr, 0), max(dr, 0))
    xp = F.pad(x, pad)
    r0, c0 = max(dr, 0), max(dc, 0)
    return xp[..., r0 : r0 + H, c0 : c0 + W]


class CholeskyPrecision(Covariance):
    """:math:`\\Sigma^{-1} = LL^\\top` with a banded lower-triangular :math:`L` (raster order).

    ``log_diag`` ``(B,1,H,W)`` gives :math:`L_{pp} = e^{d_p}`; ``offdiag`` ``(B,K,H,W)``, with
    :math:`K` = ``len(causal_offsets(radius))``, gives :math:`L_{p+o_k,\\,p} = w_k(p)`
    (entries whose
    row :math:`p+o_k` falls outside the image are ignored). Hence

    .. math:: (L^\\top r)_p = e^{d_p} r_p + \\sum_k w_k(p)\\, r_{p+o_k},\\qquad
              (Ls)_q = e^{d_q}s_q + \\sum_k w_k(q-o_k)\\, s_{q-o_k},

    :math:`\\log\\det\\Sigma = -2\\sum_p d_p` and :math:`\\Sigma^{-1}r = L(L^\\top r)`.
    Products with
    :math:`\\Sigma` itself (for plots and samples) use dense triangular solves.
    """

    def __init__(self, log_diag: torch.Tensor, offdiag: torch.Tensor, radius: int):
        _check_image("log_diag", log_diag)
        _check_image("offdiag", offdiag, channels=None)
        self.offsets = causal_offsets(radius)
        if offdiag.shape[1] != len(self.offsets) or offdiag.shape[0] != log_diag.shape[0] or (
            offdiag.shape[-2:] != log_diag.shape[-2:]
        ):
            raise ValueError(
                f"offdiag has shape {tuple(offdiag.shape)}; expected (B, {len(self.offsets)}, H, "
                f"W) matching log_diag {tuple(log_diag.shape)} for radius={radius}"
            )
        self.radius = radius
        self.log_diag = log_diag
        H, W = log_diag.shape[-2:]
        valid = torch.stack(
            [shift(torch.ones(H, W, dtype=log_diag.dtype, device=log_diag.device), dr, dc)
             for dr, dc in self.offsets]
        ) if self.offsets else log_diag.new_zeros(0, H, W)
        self.offdiag = offdiag * valid  # drop entries pointing outside the image
        self.shape = tuple(log_diag.shape)

    def apply_lt(self, r: torch.Tensor) -> torch.Tensor:
        """:math:`L^\\top r`."""
        out = torch.exp(self.log_diag) * r
        for k, (dr, dc) in enumerate(self.offsets):
            out = out + self.offdiag[:, k : k + 1] * shift(r, dr, dc)
        return out

    def apply_l(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`L s`."""
        out = torch.exp(self.log_diag) * s
        for k, (dr, dc) in enumerate(self.offsets):
            out = out + shift(self.offdiag[:, k : k + 1] * s, -dr, -dc)
        return out

    def logdet(self) -> torch.Tensor:
        return -2 * _flat(self.log_diag).sum(dim=1)

    def mahalanobis(self, r: torch.Tensor) -> torch.Tensor:
        self._check(r)
        return _flat(self.apply_lt(r)).pow(2).sum(dim=1)

    def apply_precision(self, r: torch.Tensor) -> torch.Tensor:
        return self.apply_l(self.apply_lt(r))

    def dense_factor(self) -> torch.Tensor:
        """:math:`L_b` as a dense ``(B, n, n)`` lower-triangular tensor."""
        B, _, H, W = self.shape
        n = H * W
        eye = torch.eye(n, dtype=self.log_diag.dtype, device=self.log_diag.device)
        # L e_j = column j; apply_l on a batch of unit images per batch element.
        mats = []
        for b in range(B):
            sub = self._select(b)
            mats.append(_flat(sub.apply_l(eye.reshape(n, 1, H, W))).T)
        return torch.stack(mats)

    def dense_precision(self) -> torch.Tensor:
        L = self.dense_factor()
        return L @ L.transpose(1, 2)

    def dense(self) -> torch.Tensor:
        return torch.cholesky_inverse(self.dense_factor())

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        Bp = r.shape[0]
        L = self.dense_factor()
        if L.shape[0] == 1:
            L = L.expand(Bp, -1, -1)
        rf = _flat(r).unsqueeze(-1)
        s = torch.linalg.solve_triangular(L, rf, upper=False)  # L^{-1} r
        out = torch.linalg.solve_triangular(L.transpose(1, 2), s, upper=True)
        return out.reshape(r.shape)

    def sample_noise(self, eps: torch.Tensor) -> torch.Tensor:
        L = self.dense_factor()  # x = L^{-T} eps has covariance (L L^T)^{-1}
        out = torch.linalg.solve_triangular(L.transpose(1, 2), _flat(eps).unsqueeze(-1), upper=True)
        return out.reshape(eps.shape)

    def _ref(self) -> torch.Tensor:
        return self.log_diag

    def _select(self, b: int) -> CholeskyPrecision:
        return CholeskyPrecision(self.log_diag[b : b + 1], self.offdiag[b : b + 1], self.radius)
