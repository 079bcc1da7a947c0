"""A registry of model constructors: plain functions registered under their own names."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under ``fn.__name__``; warn when the name was already taken."""
    if fn.__name__ in _REGISTRY:
        warnings.warn(f"model {fn.__name__!r} registered twice; the later one wins", stacklevel=2)
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build registered model ``name``; keyword arguments that are None keep the model's defaults."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models()) or 'none'}")
    return _REGISTRY[name](**{k: v for k, v in kwargs.items() if v is not None})
