"""The analytic-inverse hook ``LinearOperator.analytic`` and its name, per operator."""

import torch

from spinv.operators import Identity, LinearOperator, ParallelBeamCT, SubsampledFourier


class _Scale(LinearOperator):
    """A non-self-adjoint test operator without an override: A x = 2 x, A* y = 3 y (not a real
    adjoint, so the test can tell A* from A^{-1} or the identity)."""

    def forward(self, x):
        return 2 * x

    def adjoint(self, y):
        return 3 * y


def test_default_is_the_adjoint():
    y = torch.randn(2, 1, 4, 4)
    op = _Scale()
    assert op.analytic_name == "adjoint"
    assert torch.equal(op.analytic(y), 3 * y)


def test_identity_returns_the_data():
    y = torch.randn(2, 1, 5, 5)
    assert Identity().analytic_name == "noisy"
    assert Identity().analytic(y) is y


def test_ct_analytic_is_fbp_and_inverts_smooth_images():
    op = ParallelBeamCT(32, n_angles=64, cache=False)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    x = torch.exp(-((xx**2 + yy**2) / 0.2))[None, None]
    y = op(x)
    assert op.analytic_name == "fbp"
    assert torch.equal(op.analytic(y), op.fbp(y))
    assert torch.equal(op.analytic(y, filter="hann"), op.fbp(y, filter="hann"))
    assert not torch.allclose(op.analytic(y), op.adjoint(y))
    err = (op.analytic(y) - x).norm() / x.norm()
    assert err < 0.1, float(err)


def test_mri_analytic_is_zero_filling_which_is_the_adjoint():
    mask = (torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    op = SubsampledFourier(mask)
    y = op(torch.rand(1, 1, 8, 8))
    assert op.analytic_name == "zero-filled"
    assert torch.equal(op.analytic(y), op.adjoint(y))
    assert torch.equal(op.analytic(y), op.zero_filled(y))
    # zero filling = inverse FFT of the k-space with unsampled entries set to 0
    k = torch.fft.ifftshift(y * mask, dim=(-2, -1))
    assert torch.allclose(op.analytic(y), torch.fft.ifft2(k, norm="ortho"))
