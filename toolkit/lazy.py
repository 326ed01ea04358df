"""Package namespaces whose names load on first use.

``toolkit``, ``toolkit.models`` and ``toolkit.widgets`` export names from
modules that import TensorFlow, xarray or ipywidgets. :func:`lazy_exports` gives
such a package a module ``__getattr__`` that imports the defining module only
when a name is first used, so a light import (the CLI's help, the codecs, a
cube) stays light.

A public name may share its name with the submodule that defines it
(``toolkit.simulate.simulate``). Importing
such a submodule makes Python set the package's attribute to the submodule,
which would hide the function; the package's module class therefore keeps the
exported object there instead, as an eager ``from .simulate import simulate``
in the package would.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _LazyPackage(types.ModuleType):
    """A package whose exported names win over same-named submodules."""

    _lazy_exports: Mapping[str, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, types.ModuleType)
                and value.__name__ == f"{self.__name__}.{name}"
                and self._lazy_exports.get(name) == value.__name__
                and hasattr(value, name)):
            value = getattr(value, name)      # the submodule just loaded: keep its export
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's name (its module must be in ``sys.modules``).
        exports: public name -> the module that defines it.
        namespace: the package's ``globals()``, where a loaded name is cached.
    """
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module._lazy_exports = dict(exports)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace.get("__all__", ()), *exports})

    return __getattr__, __dir__
