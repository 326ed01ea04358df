"""Package namespaces whose names load on first use.

``toolkit``, ``toolkit.models`` and ``toolkit.widgets`` export names from
modules that import TensorFlow, xarray or ipywidgets. :func:`lazy_exports` gives
such a package a module ``__getattr__`` that imports the defining module only
when a name is first used, so a light import (the CLI's help, the codecs, a
cube) stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's name, for error messages.
        exports: public name -> the module that defines it.
        namespace: the package's ``globals()``, where a loaded name is cached.
    """

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
