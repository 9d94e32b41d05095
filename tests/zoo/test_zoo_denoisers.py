"""The shipped Plug-and-Play denoisers (thesis ch. 3): they load with their SHA-256 checked,
denoise, work at any image size, and the certified ones keep their certificates.

* ``denoise-averaged-*``: :math:`\\Phi = \\mathrm{id}-\\gamma\\Gamma` with
  :math:`\\Gamma = A^T\\Xi A` firmly nonexpansive (tied, :math:`\\Xi` 1/2-averaged), so
  :math:`\\Phi = (1-\\alpha)\\mathrm{id}+\\alpha N` with :math:`\\alpha=\\gamma/2` and
  :math:`N = (\\Phi-(1-\\alpha)\\mathrm{id})/\\alpha` nonexpansive (Definition 3.2.3,
  Eq. 3.6); PnP-PGD with it has a nonincreasing fixed-point residual (Theorem 3.2.4,
  Krasnosel'skii--Mann).
* ``denoise-nonexpansive-*``: :math:`\\mathrm{id}-2\\Gamma = -(2\\Gamma-\\mathrm{id})`
  (Eq. 3.6 at :math:`\\gamma = 2`), the reflection of the firmly nonexpansive
  :math:`\\Gamma`: certified 1-Lipschitz, not averaged.
* ``denoise-dncnn-*``: unconstrained (no certificate worth the name).
"""

import math

import pytest
import torch

from spinv.training import load_model
from spinv.training.checkpoint import file_sha256
from spinv.zoo import get_model

SIGMAS = ("0.05", "0.1")
AVERAGED = [f"denoise-averaged-s{s}" for s in SIGMAS]
NONEXPANSIVE = [f"denoise-nonexpansive-s{s}" for s in SIGMAS]
DNCNN = [f"denoise-dncnn-s{s}" for s in SIGMAS]
ALL = AVERAGED + NONEXPANSIVE + DNCNN


class _Models(dict):
    """Shipped denoisers, each loaded (SHA-256 checked) on first use."""

    def __missing__(self, name):
        self[name] = load_model(get_model(name).checkpoint)[0].eval()
        return self[name]


@pytest.fixture(scope="module")
def models():
    return _Models()


def _pairs(shape=(6, 1, 40, 52), seed=0):
    """Random pairs: independent images, and images with a small or a smooth perturbation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    far = torch.rand(shape, generator=g)
    near = x + 1e-2 * torch.randn(shape, generator=g)
    smooth = x + 0.2 * torch.nn.functional.avg_pool2d(
        torch.randn(shape, generator=g), 5, 1, 2)
    return torch.cat([x, x, x]), torch.cat([far, near, smooth])


def _ratios(f, x, y) -> torch.Tensor:
    return (f(x) - f(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)


@pytest.mark.parametrize("name", ALL)
def test_shipped_denoiser_provenance_and_weights(name):
    entry = get_model(name)
    p = entry.provenance
    sigma = float(name.rsplit("-s", 1)[1])
    assert p["problem"]["kind"] == "denoise" and p["problem"]["noise_sigma"] == sigma
    assert p["precision"] == "float32" and p["config"]["data"]["dataset"] == "ct-head"
    assert file_sha256(entry.checkpoint / "weights.safetensors") == p["weights_sha256"]
    summary = p["release_metrics"]["summary"]
    assert summary["psnr"]["mean"] > summary["baseline_psnr"]["mean"] + 1.0  # it denoises
    assert p["certificate"]["valid_for"] == "every image size"


@torch.no_grad()
@pytest.mark.parametrize("name", AVERAGED + NONEXPANSIVE)
def test_certified_bound_holds_on_random_pairs(models, name):
    model = models[name]
    bound = model.certified_lipschitz()
    assert bound == pytest.approx(get_model(name).provenance["certificate"]["certified"],
                                  rel=1e-6)
    assert bound <= 1.0 + 1e-9  # both kinds are certified nonexpansive
    x, y = _pairs()  # 40 x 52: not the 64 x 64 of training (fully convolutional)
    assert float(_ratios(model, x, y).max()) <= bound + 1e-4


@torch.no_grad()
@pytest.mark.parametrize("name", AVERAGED)
def test_averaged_denoiser_is_relaxed_nonexpansive_map(models, name):
    model = models[name]
    alpha = model.certified_averagedness()
    assert alpha == pytest.approx(model.gamma / 2) and alpha < 1
    n = lambda u: (model(u) - (1 - alpha) * u) / alpha  # noqa: E731
    x, y = _pairs(seed=1)
    assert float(_ratios(n, x, y).max()) <= 1.0 + 1e-4
    # equivalently ||Tx - Ty||^2 <= ||x - y||^2 - (1 - a)/a ||(I - T)x - (I - T)y||^2
    d, t = (x - y).flatten(1), (model(x) - model(y)).flatten(1)
    lhs = t.pow(2).sum(1) + (1 - alpha) / alpha * (d - t).pow(2).sum(1)
    assert bool((lhs <= d.pow(2).sum(1) * (1 + 1e-4)).all())


@pytest.mark.parametrize("name", NONEXPANSIVE)
def test_nonexpansive_denoiser_is_not_claimed_averaged(models, name):
    assert models[name].certified_averagedness() is None
    assert get_model(name).provenance["certificate"]["certified_averagedness"] is None


@torch.no_grad()
def test_pnp_pgd_with_averaged_denoiser_has_nonincreasing_residual(models):
    """Theorem 3.2.4: gradient step (c/2-averaged, c < 2) composed with an averaged denoiser
    is averaged, so Krasnosel'skii--Mann makes ||u_{k+1} - u_k|| nonincreasing; here on an MRI
    problem at 48 x 48 (complex iterates denoised part-wise) and a CT problem at 40 x 40."""
    from spinv.learned.pnp import operator_norm, pnp_proximal_gradient
    from spinv.problems import ct_problem, mri_problem

    g = torch.Generator().manual_seed(2)
    truth = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 52, 52, generator=g), 5, 1)
    for problem, x in ((mri_problem(48, pattern="lines", rate=0.3, noise=0.02, seed=0), truth),
                       (ct_problem(40, 20, photons=1e4, mu=0.1, upsample=1), truth[..., :40, :40])):
        y = problem.simulate(problem.ground_truth(x), seed=0)
        x0 = problem.analytic(y)
        step = 1.9 / operator_norm(problem.operator, x0) ** 2
        res = pnp_proximal_gradient(problem.operator, y, models[AVERAGED[0]], x0=x0, step=step,
                                    iterations=15).residuals
        assert all(math.isfinite(r) for r in res)
        assert all(b <= a * (1 + 1e-4) + 1e-7 for a, b in zip(res, res[1:], strict=False))


def test_reconstruct_with_zoo_denoiser_at_another_size():
    """`reconstruct` accepts a zoo denoiser for a CT problem whose size is not its training
    size, and PnP-PGD improves on FBP there."""
    from spinv.metrics import psnr
    from spinv.problems import ct_problem
    from spinv.reconstruction import ReconstructionOptions, reconstruct

    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 52, 52, generator=g), 5, 1)[..., :48, :48]
    problem = ct_problem(48, 30, photons=3e3, mu=0.1, upsample=1)
    y = problem.simulate(x, seed=0)
    opts = ReconstructionOptions("pnp-pgd", model="denoise-dncnn-s0.05", iterations=20,
                                 pnp_weight=0.3)
    out = reconstruct(problem, y, opts)
    assert out.shape == x.shape
    assert float(psnr(out, x)) > float(psnr(problem.analytic(y), x))
