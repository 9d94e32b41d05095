"""Registry of learnable reconstruction models, looked up by name from experiment configs.

A *model* is an ``nn.Module`` mapping measurements ``y`` (the range of the forward operator;
for denoising the noisy image) to an image ``(B, C, H, W)``: a learned reconstruction operator
:math:`\\Phi_\\theta: Y \\to X` trained by empirical risk minimisation
:math:`\\min_\\theta \\frac1N\\sum_i \\|u_i^* - \\Phi_\\theta(y_i)\\|_2^2` (thesis, Section 2.5.2).

Factories register themselves with :func:`register_model`; a factory has the signature
``build(cfg: dict, operator) -> nn.Module`` where ``cfg`` holds the free options of the
``model:`` section of a config (everything but ``name``) and ``operator`` is the
:class:`~spinv.operators.base.LinearOperator` of the problem.

Modules of other subpackages register their models on import; :func:`build_model` and
:func:`available_models` import them lazily, so that ``spinv.training`` does not depend on them.

>>> from torch import nn
>>> @register_model("doctest-identity")
... def _build(cfg, operator):
...     return nn.Identity()
>>> "doctest-identity" in available_models()
True
>>> build_model("doctest-identity", {}, None)
Identity()
>>> unregister_model("doctest-identity")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

ModelFactory = Callable[[dict, Any], nn.Module]

_REGISTRY: dict[str, ModelFactory] = {}

# Modules imported (if present) before any lookup; each registers its models on import.
PLUGIN_MODULES: tuple[str, ...] = (
    "spinv.training.models",
    "spinv.learned",
    "spinv.learned.proximal_gradient",
    "spinv.learned.primal_dual",
    "spinv.learned.pnp",
    "spinv.nn",
    "spinv.nn.nonexpansive",
    "spinv.nn.dncnn",
    "spinv.nn.equivariant",
)

_loaded = False
_plugin_errors: dict[str, str] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``build(cfg, operator) -> nn.Module`` under ``name``.

    Registering a different factory under a taken name raises ``ValueError``; re-registering the
    same function (e.g. on module reload) is allowed.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_model: name={name!r} must be a non-empty string")

    def decorator(factory: ModelFactory) -> ModelFactory:
        if not callable(factory):
            raise TypeError(f"register_model({name!r}): factory {factory!r} is not callable")
        old = _REGISTRY.get(name)
        if old is not None and old is not factory and (
            getattr(old, "__qualname__", None) != getattr(factory, "__qualname__", None)
            or getattr(old, "__module__", None) != getattr(factory, "__module__", None)
        ):
            raise ValueError(
                f"register_model: model name {name!r} is already registered by "
                f"{old.__module__}.{old.__qualname__}"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (for tests); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            # a module that does not exist (yet) is fine; a broken import inside one is reported
            if err.name is None or not module.startswith(err.name):
                _plugin_errors[module] = f"{type(err).__name__}: {err}"
        except Exception as err:  # a broken plugin must not hide the other models
            _plugin_errors[module] = f"{type(err).__name__}: {err}"
    _loaded = True


def available_models() -> list[str]:
    """Sorted names of all registered models (after importing the plugin modules)."""
    _load_plugins()
    return sorted(_REGISTRY)


def get_factory(name: str) -> ModelFactory:
    """The factory registered under ``name``; ``ValueError`` listing the known names otherwise."""
    _load_plugins()
    if name not in _REGISTRY:
        msg = f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY)) or '(none)'}"
        if _plugin_errors:
            broken = "; ".join(f"{m} ({e})" for m, e in sorted(_plugin_errors.items()))
            msg += f" (modules that failed to import: {broken})"
        raise ValueError(msg)
    return _REGISTRY[name]


def build_model(name: str, cfg: dict | None, operator: Any) -> nn.Module:
    """Build the model ``name`` with options ``cfg`` for the forward operator ``operator``."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise TypeError(f"build_model: cfg={cfg!r} must be a dict of model options")
    model = get_factory(name)(dict(cfg), operator)
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"build_model: factory of {name!r} returned {type(model).__name__}, "
            "expected a torch.nn.Module"
        )
    return model
