"""Names a package exports but imports only when first used (PEP 562), so that what does not need the training
machinery (Lightning) never loads it: ``ecgscope predict``, ``embed``, ``motion generate`` and the service."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def import_on_first_use(package: str, names: dict[str, str]) -> Callable:
    """A module ``__getattr__`` for ``package``: ``names`` maps each exported name to the submodule that holds it."""

    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
