"""Model registry and the built-in post-processing CNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spinv.operators import Identity
from spinv.training.registry import (
    available_models,
    build_model,
    register_model,
    unregister_model,
)


def test_builtin_registered_and_unknown_lists_available():
    assert "postprocess-cnn" in available_models()
    with pytest.raises(ValueError, match=r"unknown model 'nope'; available: .*postprocess-cnn"):
        build_model("nope", {}, Identity())


def test_register_conflict_and_non_module():
    @register_model("test-dummy")
    def build(cfg, operator):
        return nn.Identity()

    try:
        with pytest.raises(ValueError, match="already registered"):
            @register_model("test-dummy")
            def other(cfg, operator):  # noqa: ARG001
                return nn.Identity()

        @register_model("test-bad")
        def bad(cfg, operator):
            return 3

        with pytest.raises(TypeError, match="returned int"):
            build_model("test-bad", {}, None)
    finally:
        unregister_model("test-dummy")
        unregister_model("test-bad")


def test_postprocess_rejects_unknown_and_bad_options():
    with pytest.raises(ValueError, match="model.widht: unknown option"):
        build_model("postprocess-cnn", {"widht": 3}, Identity())
    with pytest.raises(ValueError, match="model.depth=1"):
        build_model("postprocess-cnn", {"depth": 1}, Identity())


def test_postprocess_complex_operator_returns_complex_image():
    from spinv.operators import SubsampledFourier

    mask = torch.zeros(16, 16)
    mask[:, 5:11] = 1.0
    op = SubsampledFourier(mask)
    model = build_model("postprocess-cnn", {"width": 4, "zero_init": True}, op)
    x = torch.rand(2, 1, 16, 16).to(torch.complex64)
    y = op(x)
    out = model(y)
    assert out.dtype == torch.complex64 and out.shape == (2, 1, 16, 16)
    # zero-initialised residual: exactly the zero-filled reconstruction A^* y
    torch.testing.assert_close(out, op.adjoint(y))


def test_catalogue_builds_every_model_class():
    from spinv.learned import LearnedPrimalDual, LearnedProximalGradient
    from spinv.learned.postprocess import PostProcessCNN
    from spinv.nn.dncnn import DnCNN
    from spinv.nn.nonexpansive import NonexpansiveDenoiser

    op = Identity()
    built = {
        "lpg": build_model("lpg", {"width": 4, "iterations": 1}, op),
        "lpd": build_model("lpd", {"width": 4, "iterations": 1}, op),
        "postprocess-cnn": build_model("postprocess-cnn", {"width": 4}, op),
        "dncnn": build_model("dncnn", {"depth": 3, "width": 4}, None),
        "nonexpansive-denoiser": build_model("nonexpansive-denoiser",
                                             {"width": 4, "depth": 1, "power_size": [8, 8]},
                                             None),
    }
    classes = (LearnedProximalGradient, LearnedPrimalDual, PostProcessCNN, DnCNN,
               NonexpansiveDenoiser)
    assert all(isinstance(built[n], c) for n, c in zip(built, classes, strict=True))
    with pytest.raises(ValueError, match="model.widht: unknown option of 'lpg'"):
        build_model("lpg", {"widht": 4}, op)
    with pytest.raises(ValueError, match="already registered by the built-in catalogue"):
        register_model("lpg")(lambda cfg, operator: nn.Identity())


def test_nn_and_learned_import_nothing_from_training():
    """Data flows one way: the catalogue imports the model classes, never the reverse."""
    import ast
    from pathlib import Path

    import spinv

    root = Path(spinv.__file__).parent
    offenders = []
    for sub in ("nn", "learned"):
        for path in (root / sub).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.name}: {n}" for n in names
                              if n.startswith("spinv.training")]
    assert offenders == []
