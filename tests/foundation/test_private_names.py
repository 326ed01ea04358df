"""No toolkit module reaches into another module's private (underscore) names.

The scan reads every module of ``toolkit/`` with :mod:`ast` and fails on

* an import of an underscore name from another module
  (``from toolkit.x import _y``, relative imports included);
* an attribute ``_y`` read from a name bound to a toolkit module
  (``import toolkit.x as m; m._y``);
* an attribute ``obj._y`` where ``_y`` is defined only in *other* toolkit modules
  (a private method or attribute of another module's class, such as
  ``transport._lost`` in ``shell.py``). Underscore names that no toolkit module
  defines (a third-party library's, such as ``argparse._SubParsersAction``) are
  not the toolkit's business here; dunder names are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _defined_private(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: functions, classes, assignments,
    ``self._x = ...`` attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
    return {n for n in names if _private(n)}


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every reach into another module's private names.

    Args:
        sources: module name -> (source text, whether it is a package ``__init__``).
    """
    trees = {name: ast.parse(text) for name, (text, _) in sources.items()}
    defined = {name: _defined_private(tree) for name, tree in trees.items()}
    found: list[tuple[str, int, str]] = []
    for module, tree in trees.items():
        is_package = sources[module][1]
        module_aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "toolkit":
                        module_aliases.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, is_package, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in sources:
                        module_aliases.add(alias.asname or alias.name)
                    elif _private(alias.name) and source != module:
                        found.append((module, node.lineno, f"from {source} import "
                                      f"{alias.name}"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            value = node.value
            where = ast.unparse(node)
            if isinstance(value, ast.Name) and value.id in module_aliases:
                found.append((module, node.lineno, where + " (a private name of a module)"))
            elif node.attr not in defined[module] and any(
                    node.attr in names for other, names in defined.items() if other != module):
                owners = sorted(o for o, names in defined.items() if node.attr in names)
                found.append((module, node.lineno, where + f" (private to {', '.join(owners)})"))
    return [f"{module}:{line}: {what}" for module, line, what in sorted(found)]


def _toolkit_sources() -> dict[str, tuple[str, bool]]:
    return {_module_name(p, ROOT): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted(ROOT.rglob("*.py"))}


def test_no_toolkit_module_reaches_into_another_modules_private_names():
    sources = _toolkit_sources()
    assert len(sources) > 100  # the scan sees the whole package
    assert violations(sources) == []


def test_the_scan_finds_each_kind_of_reach():
    sources = {
        "toolkit.a": ("class T:\n    def _lost(self):\n        pass\n_SECRET = 1\n", False),
        "toolkit.pkg": ("", True),
        "toolkit.pkg.b": (
            "import toolkit.a as ta\n"
            "from toolkit.a import _SECRET\n"
            "from ..a import _SECRET as s2\n"
            "from toolkit import a\n"
            "def f(t):\n"
            "    t._lost()\n"          # private to toolkit.a
            "    ta._SECRET\n"         # on a module object
            "    a.T\n"                # public: fine
            "    t._nodes_by_depth\n"  # nobody in the toolkit defines it: third-party
            "    t.__class__\n", False),
        "toolkit.c": ("class U:\n    def _own(self):\n        return self._own, U()._own\n",
                      False),
    }
    found = violations(sources)
    assert [f.split(": ", 1)[1].split(" (")[0] for f in found] == [
        "from toolkit.a import _SECRET", "from toolkit.a import _SECRET",
        "t._lost", "ta._SECRET"]
    assert "private to toolkit.a" in found[2] and "module" in found[3]
