"""``es.train``, ``es.evaluate``, ``es.survival`` and ``es.report`` share their names with subpackages, which
Python binds on the package as soon as anything imports them; so those four subpackages are made callable,
calling the API's function (:mod:`ecgscope.api`), and ``es.train(...)`` works whichever a name resolves to."""

from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ecgscope import api

        return getattr(api, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Let the subpackage ``module_name`` (``ecgscope.train``) be called as the API function of its name."""
    sys.modules[module_name].__class__ = _CallableModule
