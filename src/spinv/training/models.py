"""The catalogue of learnable models: every model class of the project, built by name.

A *model* is an ``nn.Module`` mapping measurements ``y`` (for denoising the noisy image) to an
image ``(B, C, H, W)``: a learned reconstruction operator :math:`\\Phi_\\theta: Y \\to X`
trained by empirical risk minimisation (thesis §2.5.2). A config names one in its ``model:``
section; the other keys of that section are the options of its factory
``build(options: dict, operator) -> nn.Module``:

================================  ===================================================  =========
name                              class                                                 thesis
================================  ===================================================  =========
``lpg``                           :class:`spinv.learned.LearnedProximalGradient`        Alg. 5
``lpd``                           :class:`spinv.learned.LearnedPrimalDual`              §2.4
``postprocess-cnn``               :class:`spinv.learned.postprocess.PostProcessCNN`     §2.5.1
``dncnn``                         :class:`spinv.nn.dncnn.DnCNN`                         §3.4
``nonexpansive-denoiser``         :class:`spinv.nn.nonexpansive.NonexpansiveDenoiser`   Eq. 3.5-6
``nonexpansive-resnet``           :class:`spinv.nn.nonexpansive.NonexpansiveResNet`     Alg. 7
``gaussian-vae``                  :class:`spinv.nn.vae.GaussianVAE`                     talk 002
================================  ===================================================  =========

This module imports the model classes (``training`` depends on ``nn`` and ``learned``, never
the reverse). Users add their own models with :func:`spinv.training.registry.register_model`.

>>> from spinv.operators import Identity
>>> build_builtin("dncnn", {"depth": 3, "width": 4}, Identity()).__class__.__name__
'DnCNN'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from spinv.learned import LearnedPrimalDual, LearnedProximalGradient
from spinv.learned.postprocess import PostProcessCNN
from spinv.nn.dncnn import DnCNN
from spinv.nn.nonexpansive import ButcherTableau, NonexpansiveDenoiser, NonexpansiveResNet
from spinv.nn.vae import GaussianVAE

__all__ = ["BUILTIN_MODELS", "PostProcessCNN", "build_builtin"]


def _check_options(name: str, cfg: dict, allowed: set[str]) -> None:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(
            f"model.{unknown[0]}: unknown option of {name!r}; allowed: "
            f"{', '.join(sorted(allowed))}"
        )


def build_lpg(cfg: dict, operator: Any) -> LearnedProximalGradient:
    """``LearnedProximalGradient(operator, **cfg)``; options group, width, iterations, memory,
    step_size, kernel_size, negative_slope, seed, channels_last."""
    _check_options("lpg", cfg, {"group", "width", "iterations", "memory", "step_size",
                                "kernel_size", "negative_slope", "seed", "channels_last"})
    return LearnedProximalGradient(operator, **cfg)


def build_lpd(cfg: dict, operator: Any) -> LearnedPrimalDual:
    """``LearnedPrimalDual(operator, **cfg)``; options group, iterations, n_primal, n_dual,
    width, kernel_size, seed."""
    _check_options("lpd", cfg, {"group", "iterations", "n_primal", "n_dual", "width",
                                "kernel_size", "seed"})
    return LearnedPrimalDual(operator, **cfg)


def build_postprocess_cnn(cfg: dict, operator: Any) -> PostProcessCNN:
    """:class:`PostProcessCNN`; options width, depth, channels, init, zero_init."""
    _check_options("postprocess-cnn", cfg, {"width", "depth", "channels", "init", "zero_init"})
    return PostProcessCNN(operator, **cfg)


def build_dncnn(cfg: dict, operator: Any = None) -> DnCNN:
    """``DnCNN(**cfg)`` (a denoiser: the operator is not used)."""
    return DnCNN(**cfg)


def build_nonexpansive_denoiser(cfg: dict, operator: Any = None) -> NonexpansiveDenoiser:
    """``NonexpansiveDenoiser.from_config(**cfg)`` (a denoiser, Y = X; flat options, lists
    become tuples), ``method_tableau: {a, b}`` a :class:`ButcherTableau`."""
    cfg = dict(cfg)
    tab = cfg.pop("method_tableau", None)
    if tab is not None:
        cfg["method"] = ButcherTableau.from_lists(tab["a"], tab["b"], cfg.get("method", "c"))
    return NonexpansiveDenoiser.from_config(**cfg)


def build_nonexpansive_resnet(cfg: dict, operator: Any = None) -> NonexpansiveResNet:
    """``NonexpansiveResNet(**cfg)`` (:math:`\\Xi` of Algorithm 7, e.g. the toy |x| fit)."""
    return NonexpansiveResNet(**cfg)


def build_gaussian_vae(cfg: dict, operator: Any = None) -> GaussianVAE:
    """``GaussianVAE(**cfg)`` (a generative prior, not a reconstruction operator)."""
    cfg = dict(cfg)
    if cfg.get("log_var_range") is not None:
        cfg["log_var_range"] = tuple(cfg["log_var_range"])
    return GaussianVAE(**cfg)


BUILTIN_MODELS: dict[str, Callable[[dict, Any], nn.Module]] = {
    "lpg": build_lpg,
    "lpd": build_lpd,
    "postprocess-cnn": build_postprocess_cnn,
    "dncnn": build_dncnn,
    "nonexpansive-denoiser": build_nonexpansive_denoiser,
    "nonexpansive-resnet": build_nonexpansive_resnet,
    "gaussian-vae": build_gaussian_vae,
}


def build_builtin(name: str, cfg: dict, operator: Any) -> nn.Module:
    """Build the catalogued model ``name``; ``ValueError`` listing the names otherwise."""
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown model {name!r}; catalogued: {', '.join(sorted(BUILTIN_MODELS))}")
    return BUILTIN_MODELS[name](dict(cfg), operator)
