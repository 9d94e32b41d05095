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
