"""Minimal compatibility shims that let the authors' code run on today's libraries (issue 16.1).

Each shim is applied only where it is needed and is *recorded*: :func:`applied` returns the list
that the anchor JSON stores beside the authors' timings. None changes the arithmetic of the
authors' code; they only map removed APIs onto their current equivalents.

* ``numpy-aliases``: NumPy 2 removed ``np.float``/``np.int``/``np.bool``/``np.complex`` (used by
  old e2cnn); they are set to the builtins they always aliased.
* ``torch-fft-function``: PyTorch 1.8 replaced the function ``torch.fft(x, signal_ndim,
  normalized)`` (complex numbers as a trailing dimension of size 2) by the module ``torch.fft``.
  :class:`OldTorch` is a proxy of ``torch`` whose ``fft``/``ifft`` are the old functions,
  computed with ``torch.fft.fftn`` on ``view_as_complex`` -- installed as the ``torch`` global of
  the authors' modules only (bilevelmri).
* ``astra-matrix``: where astra-toolbox cannot be installed, the authors' ``RayTransform`` (astra
  CPU projector, one numpy round trip per sample) is replaced by :class:`MatrixRayTransform`,
  which keeps that structure (per-sample ``numpy`` round trip, two autograd Functions) but
  applies a given sparse matrix with scipy. The runner passes the Joseph matrix of the same
  geometry, so both sides apply the same operator.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch

_APPLIED: list[str] = []


def applied() -> list[str]:
    return list(_APPLIED)


def numpy_aliases() -> None:
    import builtins

    missing = [n for n in ("float", "int", "bool", "complex", "object") if n not in np.__dict__]
    for name in missing:
        setattr(np, name, getattr(builtins, name))
    if missing:
        _APPLIED.append(f"numpy-aliases: np.{', np.'.join(missing)} -> builtins")


def _old_fft(inverse: bool):
    def fn(x, signal_ndim, normalized=False):
        z = torch.view_as_complex(x.contiguous())
        dims = tuple(range(-signal_ndim, 0))
        norm = "ortho" if normalized else ("forward" if inverse else "backward")
        out = (torch.fft.ifftn if inverse else torch.fft.fftn)(z, dim=dims, norm=norm)
        return torch.view_as_real(out)

    return fn


class OldTorch(types.ModuleType):
    """``torch`` with the pre-1.8 ``fft``/``ifft`` functions (complex as a trailing 2-dim)."""

    def __init__(self) -> None:
        super().__init__("torch")
        self.fft = _old_fft(False)
        self.ifft = _old_fft(True)

    def __getattr__(self, name):
        return getattr(torch, name)


def old_torch_fft(*modules) -> None:
    shim = OldTorch()
    for module in modules:
        module.torch = shim
    _APPLIED.append("torch-fft-function: torch.fft/ifft(x, signal_ndim, normalized) -> "
                    "torch.fft.fftn/ifftn on view_as_complex, in " +
                    ", ".join(m.__name__ for m in modules))


class MatrixRayTransform:
    """Drop-in for ``equivariant_ip.ct.raytransform.RayTransform`` applying a scipy matrix."""

    def __init__(self, matrix, image_shape, sino_shape):
        self.m, self.mt = matrix.tocsr(), matrix.T.tocsr()
        self.image_shape, self.sino_shape = image_shape, sino_shape
        outer = self

        def apply(m, x, shape):
            out = [m @ x[i, 0].detach().cpu().numpy().reshape(-1) for i in range(x.shape[0])]
            out = torch.tensor(np.stack(out).reshape(len(out), *shape), device=x.device)
            return out.view(out.shape[0], 1, *shape)

        class _Ray(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return apply(outer.m, x, outer.sino_shape)

            @staticmethod
            def backward(ctx, g):
                return apply(outer.mt, g, outer.image_shape)

        class _Back(torch.autograd.Function):
            @staticmethod
            def forward(ctx, z):
                return apply(outer.mt, z, outer.image_shape)

            @staticmethod
            def backward(ctx, g):
                return apply(outer.m, g, outer.sino_shape)

        self._fwd, self._bwd = _Ray.apply, _Back.apply

    def __call__(self, x):
        return self._fwd(x)

    def adjoint(self, z):
        return self._bwd(z)


def stub_astra() -> None:
    """Make ``import astra`` succeed (the authors' modules import it at top level) when the
    real package is absent; any use of the stub raises."""
    try:
        import astra  # noqa: F401
    except ImportError:
        stub = types.ModuleType("astra")

        def _missing(*_a, **_k):
            raise RuntimeError("astra-toolbox is not installed (stub from anchors/shims.py)")

        stub.__getattr__ = lambda name: _missing  # type: ignore[attr-defined]
        sys.modules["astra"] = stub
        _APPLIED.append("astra-matrix: astra-toolbox absent; RayTransform replaced by the "
                        "same-geometry Joseph matrix applied with scipy per sample")
