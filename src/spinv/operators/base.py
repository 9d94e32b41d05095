"""The linear forward operator contract shared by every physics model.

A forward operator :math:`A: X \\to Y` is a batched, differentiable torch module acting on
images of shape ``(B, C, H, W)``. Besides ``A(x)`` (``forward``) it provides the exact adjoint
:math:`A^*`, characterised by :math:`\\langle Ax, y\\rangle_Y = \\langle x, A^*y\\rangle_X`
(real part of the inner product for complex spaces), an operator-norm estimate by power
iteration on :math:`A^*A`, and :meth:`LinearOperator.adjoint_test`, which measures the relative
mismatch of that identity on random inputs.

>>> import torch
>>> from spinv.operators import Identity
>>> A = Identity()
>>> A.adjoint_test((1, 1, 8, 8), seed=0) < 1e-6
True
>>> round(A.norm((1, 1, 8, 8)), 4)
1.0
"""

from __future__ import annotations

import torch
from torch import nn


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real inner product :math:`\\mathrm{Re}\\sum_i a_i \\bar b_i` over all but the batch axis.

    Returns a tensor of shape ``(B,)``. Equal to :func:`spinv.linalg.inner` bit for bit on real
    tensors; on complex ones it rounds differently (the real part of the complex product, summed
    over a strided view), and :meth:`LinearOperator.adjoint_test`, its only user, reports its
    mismatch with it, so the values it has reported stay as they were
    (``tests/test_linalg.py`` pins the two to each other).
    """
    prod = a * b.conj() if a.is_complex() or b.is_complex() else a * b
    return prod.real.reshape(a.shape[0], -1).sum(dim=1) if prod.is_complex() else prod.reshape(
        a.shape[0], -1
    ).sum(dim=1)


class LinearOperator(nn.Module):
    """Base class: subclasses implement :meth:`forward` and :meth:`adjoint`.

    ``domain_dtype`` is the dtype of images the operator expects (``torch.float32`` for CT,
    ``torch.complex64`` for MRI); :meth:`adjoint_test` and :meth:`norm` use it to draw inputs.
    """

    domain_dtype: torch.dtype = torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """The normal operator :math:`A^*A x`."""
        return self.adjoint(self.forward(x))

    #: Name of :meth:`analytic`'s reconstruction, as used in tables and on the command line.
    analytic_name: str = "adjoint"

    def analytic(self, y: torch.Tensor) -> torch.Tensor:
        """The analytic (non-iterative) reconstruction :math:`u_0(y)` of data ``y``.

        The one place where "FBP if available, else the adjoint" is decided: the default is
        the adjoint :math:`A^*y`; :class:`~spinv.operators.ParallelBeamCT` overrides it with
        filtered back-projection, :class:`~spinv.operators.SubsampledFourier` with zero
        filling :math:`F^{-1}S^*y` (which is its adjoint) and :class:`Identity` returns ``y``.
        :attr:`analytic_name` names the result (``"adjoint"``, ``"fbp"``, ``"zero-filled"``,
        ``"noisy"``).
        """
        return self.adjoint(y)

    def _device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    @torch.no_grad()
    def norm(
        self,
        shape: tuple[int, ...] | None = None,
        iterations: int = 100,
        tol: float = 1e-7,
        seed: int = 0,
    ) -> float:
        """Operator norm :math:`\\|A\\| = \\sqrt{\\lambda_{\\max}(A^*A)}` by power iteration.

        ``shape`` is an input shape ``(B, C, H, W)``; operators that know their domain
        (``image_shape`` attribute) may omit it. Power iteration converges from below, so the
        returned value is a (tight) lower bound. The iteration is
        :func:`spinv.linalg.power_iteration` on :math:`A^*A` (stops once consecutive estimates
        of :math:`\\|A\\|^2` agree to ``tol`` relatively), from a standard normal start drawn
        with ``seed``.
        """
        from spinv.linalg import power_iteration, random_vector

        if shape is None:
            shape = getattr(self, "image_shape", None)
            if shape is None:
                raise ValueError(
                    "shape=None: this operator does not know its input size; pass "
                    "shape=(B, C, H, W)"
                )
        gen = torch.Generator().manual_seed(seed)
        x = random_vector(tuple(shape), self.domain_dtype, self._device(), gen)
        return power_iteration(self.normal, x, iterations=iterations, tol=tol).value

    @torch.no_grad()
    def adjoint_test(self, shape: tuple[int, ...] | None = None, seed: int = 0) -> float:
        """Relative adjoint mismatch
        :math:`|\\langle Ax,y\\rangle-\\langle x,A^*y\\rangle|/(\\|Ax\\|\\|y\\|)`.

        ``x`` and ``y`` are random with a fixed ``seed``; returns a float (0 for an exact adjoint
        up to rounding). For an operator whose output is zero (e.g. an all-zero sampling mask) the
        mismatch is measured against :math:`\\|x\\|\\|A^*y\\|` instead, and is 0 when both are zero.
        """
        from spinv.linalg import random_vector

        if shape is None:
            shape = getattr(self, "image_shape", None)
            if shape is None:
                raise ValueError("shape=None: pass shape=(B, C, H, W) for this operator")
        gen = torch.Generator().manual_seed(seed)
        x = random_vector(tuple(shape), self.domain_dtype, self._device(), gen)
        Ax = self.forward(x)
        y = random_vector(tuple(Ax.shape), Ax.dtype, Ax.device, gen)
        lhs = inner(Ax, y).sum()
        rhs = inner(x, self.adjoint(y)).sum()
        scale = Ax.abs().pow(2).sum().sqrt() * y.abs().pow(2).sum().sqrt()
        if scale == 0:
            scale = x.abs().pow(2).sum().sqrt() * self.adjoint(y).abs().pow(2).sum().sqrt()
        diff = (lhs - rhs).abs()
        return 0.0 if scale == 0 and diff == 0 else float(diff / scale)


class Identity(LinearOperator):
    """The identity :math:`A = I` (denoising as an inverse problem); its analytic
    reconstruction is the noisy data itself."""

    analytic_name = "noisy"

    def analytic(self, y: torch.Tensor) -> torch.Tensor:
        """The data ``y`` itself (:math:`A^* = I`)."""
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y
