"""No import cycle between the parts of ``toolkit``.

The graph's nodes are the subpackages (``toolkit.devices``, ``toolkit.energy``...)
and the top-level modules (``toolkit.campaign``, ``toolkit.cube``...); an edge is
any import of one part by a module of another, read with :mod:`ast` — at the top
of a module or inside a function, since a deferred import is still a dependency.
Imports of the package root's own lazy namespace (``toolkit/__init__.py``) are
not edges: the root only maps names to modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).parent


def _part(module: str) -> str:
    """``toolkit.devices.transport.ssh`` -> ``toolkit.devices``; ``toolkit.cube`` -> itself."""
    return ".".join(module.split(".")[:2])


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> where (``module:line``), for imports between parts.

    Args:
        sources: module name -> (source text, whether it is a package ``__init__``).
    """
    graph: dict[str, dict[str, list[str]]] = {}
    for module, (text, is_package) in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                # `from toolkit.x import y`: y may be a submodule of x
                targets = [source, *(f"{source}.{a.name}" for a in node.names
                                     if f"{source}.{a.name}" in sources)]
            else:
                continue
            for target in targets:
                if target not in sources or target == "toolkit":
                    continue
                src, dst = _part(module), _part(target)
                if src != dst and src != "toolkit":
                    graph.setdefault(src, {}).setdefault(dst, []).append(
                        f"{module}:{node.lineno}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _toolkit_sources() -> dict[str, tuple[str, bool]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (
            path.read_text(encoding="utf-8"), is_package)
    return out


def _explain(graph: dict[str, dict[str, list[str]]], component: list[str]) -> str:
    return "; ".join(f"{a} -> {b} ({graph[a][b][0]})" for a in component
                     for b in graph.get(a, {}) if b in component)


def test_no_import_cycle_between_toolkit_parts():
    graph = import_graph(_toolkit_sources())
    assert {"toolkit.devices", "toolkit.energy", "toolkit.campaign"} <= set(graph)
    assert "toolkit.energy" in graph["toolkit.devices"]  # the scan sees real edges
    found = cycles(graph)
    assert found == [], "\n".join(_explain(graph, c) for c in found)


def test_energy_and_devices_share_only_the_neutral_hardware_package():
    graph = import_graph(_toolkit_sources())
    assert "toolkit.devices" not in graph.get("toolkit.energy", {})
    assert "toolkit.hardware" in graph["toolkit.energy"]
    # config: the one home of what each accelerator value means (a leaf module)
    # fileio: checked paths and files (a leaf module, as config is)
    assert set(graph.get("toolkit.hardware", {})) <= {"toolkit.config", "toolkit.errors",
                                                      "toolkit.fileio", "toolkit.paths",
                                                      "toolkit.tomlfile"}
    assert set(graph.get("toolkit.config", {})) <= {"toolkit.errors"}
    assert set(graph.get("toolkit.fileio", {})) <= {"toolkit.errors", "toolkit.tomlfile"}


def test_the_scan_finds_a_cycle_through_a_deferred_relative_import():
    sources = {
        "toolkit": ("", True),
        "toolkit.a": ("", True),
        "toolkit.a.x": ("from toolkit.b import y\n", False),
        "toolkit.b": ("", True),
        "toolkit.b.y": ("def f():\n    from ..c import z\n", False),
        "toolkit.c": ("import toolkit.a.x\n", False),
        "toolkit.d": ("from toolkit import c\n", False),
    }
    graph = import_graph(sources)
    assert graph["toolkit.d"] == {"toolkit.c": ["toolkit.d:1"]}
    assert cycles(graph) == [["toolkit.a", "toolkit.b", "toolkit.c"]]
    del sources["toolkit.c"]
    assert cycles(import_graph(sources)) == []


#: packages whose sub-folders are layers, lowest first: each imports only those before it
#: (a module at the package's top level may import every layer)
LAYERS = {
    "toolkit.devices": ("inventory", "transport", "controllers", "testbeds"),
    "toolkit.partition": ("model", "strategies", "cost", "execution"),
}


def _layer(package: str, module: str) -> str | None:
    rest = module.removeprefix(package + ".").split(".")
    if not module.startswith(package + ".") or rest[0] not in LAYERS[package]:
        return None
    return rest[0]


def upward_imports(package: str, sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports from a layer of ``package`` into a layer above it, as ``module:line``."""
    layers = LAYERS[package]
    upward = []
    for module, (text, _) in sources.items():
        layer = _layer(package, module)
        if layer is None:
            continue
        allowed = layers[: layers.index(layer) + 1]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                assert not node.level, f"{module}:{node.lineno}: {package} uses absolute imports"
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                target = _layer(package, name)
                if target is not None and target not in allowed:
                    upward.append(f"{module}:{node.lineno} imports {name}")
    return upward


def test_layers_import_only_downwards():
    """devices: transport/ imports no controller or testbed, controllers/ no testbed;
    partition: model/ imports no strategy, strategies/ no cost, cost/ no execution."""
    sources = _toolkit_sources()
    for package, layers in LAYERS.items():
        assert {_layer(package, m) for m in sources} >= set(layers), package
        assert upward_imports(package, sources) == [], package


def test_the_layer_scan_finds_an_upward_import():
    sources = {"toolkit.partition.model.plan": ("", False),
               "toolkit.partition.cost.per_device": ("", False),
               "toolkit.partition.model.ops":
                   ("def f():\n    from toolkit.partition.cost.per_device import x\n", False)}
    assert upward_imports("toolkit.partition", sources) == [
        "toolkit.partition.model.ops:2 imports toolkit.partition.cost.per_device"]
