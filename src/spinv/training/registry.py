"""Models by name: the catalogue of built-in models plus the models users register.

A config's ``model:`` section names a model; :func:`build_model` builds it with the section's
other keys as options, for the forward operator of the problem (thesis §2.5.2: a learned
reconstruction operator :math:`\\Phi_\\theta: Y \\to X`). The built-in models are listed in
:mod:`spinv.training.models` (which imports their classes); a user adds a model of their own
with :func:`register_model`, a decorator for a factory ``build(cfg: dict, operator) -> nn.Module``.

>>> from torch import nn
>>> @register_model("doctest-identity")
... def _build(cfg, operator):
...     return nn.Identity()
>>> "doctest-identity" in available_models() and "lpg" in available_models()
True
>>> build_model("doctest-identity", {}, None)
Identity()
>>> unregister_model("doctest-identity")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from spinv.training.models import BUILTIN_MODELS

__all__ = ["ModelFactory", "available_models", "build_model", "get_factory", "register_model",
           "unregister_model"]

ModelFactory = Callable[[dict, Any], nn.Module]

_USER_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``build(cfg, operator) -> nn.Module`` under ``name``.

    A built-in name, or a name registered by a different factory, raises ``ValueError``;
    re-registering the same function (e.g. on module reload) is allowed.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_model: name={name!r} must be a non-empty string")

    def decorator(factory: ModelFactory) -> ModelFactory:
        if not callable(factory):
            raise TypeError(f"register_model({name!r}): factory {factory!r} is not callable")
        if name in BUILTIN_MODELS:
            raise ValueError(f"register_model: model name {name!r} is already registered by "
                             "the built-in catalogue spinv.training.models")
        old = _USER_MODELS.get(name)
        if old is not None and old is not factory and (
            getattr(old, "__qualname__", None) != getattr(factory, "__qualname__", None)
            or getattr(old, "__module__", None) != getattr(factory, "__module__", None)
        ):
            raise ValueError(
                f"register_model: model name {name!r} is already registered by "
                f"{old.__module__}.{old.__qualname__}"
            )
        _USER_MODELS[name] = factory
        return factory

    return decorator


def unregister_model(name: str) -> None:
    """Remove a user-registered model (for tests); unknown names are ignored."""
    _USER_MODELS.pop(name, None)


def available_models() -> list[str]:
    """Sorted names of all models: the catalogue and the user-registered ones."""
    return sorted({*BUILTIN_MODELS, *_USER_MODELS})


def get_factory(name: str) -> ModelFactory:
    """The factory of ``name``; ``ValueError`` listing the known names otherwise."""
    factory = BUILTIN_MODELS.get(name) or _USER_MODELS.get(name)
    if factory is None:
        raise ValueError(f"model.name: unknown model {name!r}; available: "
                         f"{', '.join(available_models())}")
    return factory


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
