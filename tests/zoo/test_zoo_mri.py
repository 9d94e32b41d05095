"""The shipped MRI learned-proximal-gradient models (ordinary and C4): they load with their
SHA-256 checked, solve the chapter-2 sweep's MRI problem, and the C4 model is equivariant to
90-degree rotations wherever the maths guarantees it.

What holds (thesis Prop. 2.4.1 and §2.5.1): the proximal blocks of the C4 model commute
exactly with ``rot90`` (each real/imaginary channel and each memory channel is a scalar field);
the data-term gradient :math:`A^*(Au-y)` commutes with ``rot90`` only if :math:`A^*A` does. For
the Cartesian *lines* mask it does not (rotated images are sampled along rows), so the whole
reconstruction is *not* equivariant with the shipped operator. It is when the mask is rotated
with the image: for the centred orthonormal DFT on an even grid,
:math:`\\mathcal F(\\mathrm{rot90}\\,u)(f_1,f_2) =
e^{-2\\pi i f_1(N-1)/N}\\,(\\mathcal Fu)(f_2,-f_1)`,
so with :math:`S'(f_1,f_2) = S(f_2,-f_1)` (indices: ``S'[k1, k2] = S[k2, (N - k1) % N]``)
one has :math:`A'^*A'\\,\\mathrm{rot90} = \\mathrm{rot90}\\,A^*A` and
:math:`A'^*A'(\\mathrm{rot90}\\,x) = \\mathrm{rot90}(A^*Ax)`, hence
:math:`\\Lambda'(A'\\,\\mathrm{rot90}\\,x) = \\mathrm{rot90}\\,\\Lambda(Ax)` for the C4 model
:math:`\\Lambda`; with full sampling :math:`S' = S = 1`.
"""

import copy

import pytest
import torch

from spinv.training import load_model
from spinv.zoo import get_model, resolve_model

NAMES = ("mri-lpg", "mri-lpg-c4")
#: the MRI problem of configs/equivariance-sweep-n-mri.yaml ("small")
SWEEP = {"kind": "mri", "image_size": 64, "noise_sigma": 0.02,
         "mask": {"pattern": "lines", "rate": 0.2, "seed": 0}}


@pytest.fixture(scope="module")
def c4():
    model, cfg = load_model(resolve_model("mri-lpg-c4"))
    return model


def _image(seed: int = 0) -> torch.Tensor:
    """A smooth random complex test image (1, 1, 64, 64)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 2, 68, 68, generator=g), 5, 1)
    return torch.complex(x[:, :1], x[:, 1:])


def _rot(x: torch.Tensor) -> torch.Tensor:
    return torch.rot90(x, 1, (2, 3))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_mri_models_load_and_solve_the_sweep_problem(name):
    entry = get_model(name)
    p = entry.provenance
    assert entry.kind == "model" and p["precision"] == "float32"
    assert {k: p["problem"][k] for k in SWEEP} == SWEEP
    assert p["config"]["data"]["dataset"] == "brain-t1" and p["config"]["data"]["n_train"] is None
    assert p["config"]["model"]["group"] == ("C4" if name.endswith("c4") else None)
    model, cfg = load_model(entry.checkpoint)  # checks the SHA-256 of the weights
    y = model.operator(_image())
    out = model(y)
    assert out.shape == (1, 1, 64, 64) and out.is_complex() and torch.isfinite(out).all()
    assert float(model.operator.sampling_rate) == pytest.approx(0.2, abs=0.02)


@torch.no_grad()
def test_c4_proximal_blocks_commute_with_rot90(c4):
    g = torch.Generator().manual_seed(1)
    block = c4.blocks[0]
    z = torch.randn(2, block_in_channels(c4), 64, 64, generator=g)
    assert torch.allclose(block(_rot(z)), _rot(block(z)), atol=1e-5, rtol=1e-4)


def block_in_channels(model) -> int:
    """2 image channels (real, imaginary) + memory for the iterate, 2 for the gradient."""
    return 2 * model.images.channels + model.memory


def _rotated_mask(mask: torch.Tensor) -> torch.Tensor:
    """S'[k1, k2] = S[k2, (N - k1) % N]: the mask rotated with the image about the DC."""
    n = mask.shape[0]
    k1 = (n - torch.arange(n)) % n
    return mask[torch.arange(n)[None, :], k1[:, None]]


@torch.no_grad()
def test_c4_reconstruction_is_equivariant_when_the_mask_rotates_with_the_image(c4):
    x = _image(2)
    turned = copy.deepcopy(c4)
    turned.operator.mask = _rotated_mask(c4.operator.mask)
    # the identity behind it: A'^* A' rot90 = rot90 A^* A
    assert torch.allclose(turned.operator.normal(_rot(x)), _rot(c4.operator.normal(x)), atol=1e-5)
    out, out_rot = c4(c4.operator(x)), turned(turned.operator(_rot(x)))
    scale = out.abs().max()
    assert float((out_rot - _rot(out)).abs().max() / scale) < 1e-4


@torch.no_grad()
def test_c4_reconstruction_is_equivariant_with_full_sampling(c4):
    x = _image(3)
    full = copy.deepcopy(c4)
    full.operator.mask = torch.ones_like(c4.operator.mask)
    out, out_rot = full(full.operator(x)), full(full.operator(_rot(x)))
    assert float((out_rot - _rot(out)).abs().max() / out.abs().max()) < 1e-4


def test_cli_reconstructs_simulated_mri_with_the_shipped_model_and_refuses_a_mismatch(
        tmp_path, capsys):
    import numpy as np

    from spinv.cli import main

    image = tmp_path / "x.npy"
    np.save(image, np.random.default_rng(0).random((64, 64), dtype=np.float32))
    common = ["simulate", "--problem", "mri", "--input", str(image), "--mask", "lines",
              "--noise", "0.02", "--seed", "0"]
    assert main([*common, "--rate", "0.2", "--out", str(tmp_path / "y.npz")]) == 0
    assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method", "lpg",
                 "--model", "mri-lpg-c4", "--out", str(tmp_path / "r.npy")]) == 0
    model, _ = load_model(resolve_model("mri-lpg-c4"))
    with np.load(tmp_path / "y.npz") as f:
        y = torch.as_tensor(f["y"])
    with torch.no_grad():
        expected = model(y.reshape(1, 1, 64, 64))[0, 0]
    got = torch.as_tensor(np.load(tmp_path / "r.npy"))
    assert torch.allclose(got.reshape(64, 64).abs(), expected.abs(), atol=1e-5)
    capsys.readouterr()
    assert main([*common, "--rate", "0.25", "--out", str(tmp_path / "z.npz")]) == 0
    assert main(["reconstruct", "--measurements", str(tmp_path / "z.npz"), "--method", "lpg",
                 "--model", "mri-lpg-c4", "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "rate 0.2 vs 0.25" in err[0]
