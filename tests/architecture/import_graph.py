"""The import graphs of the project's distributions: cycles, and ort-core's modules per layer.

Run it to print the report (the issue notes quote it)::

    python tests/architecture/import_graph.py

It reads source files (``grimp``), importing nothing, so it also works on an older checkout put
first on ``PYTHONPATH``. Imports inside functions and under ``TYPE_CHECKING`` count: a cycle
through either is still a tangle to read. ``tests/architecture/test_layers.py`` holds the same
rules as tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp

#: Import package of each distribution whose graph must be free of cycles.
PACKAGES = ("ort", "ort_provider_cpu", "ort_provider_cuda", "ort_backend",
            "ort_provider_example")

#: ort-core's layers, top first; a module may import only from its own layer or below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("main", ("ort.__main__",)),
    ("tools", ("ort.tools", "ort.testing")),
    ("api", ("ort.api", "ort.capi")),
    ("runtime", ("ort.runtime",)),
    ("optimizer", ("ort.optimizer",)),
    ("ep", ("ort.ep",)),
    ("ir", ("ort.ir",)),
    ("base", ("ort.errors", "ort.element_types", "ort._version")),
)


def graph_of(package: str) -> grimp.ImportGraph:
    """The import graph of one package (function-level and TYPE_CHECKING imports included)."""
    return grimp.build_graph(package, cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing
    itself), each sorted, largest first."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges.get(node, ()):
                        found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def layer_of(module: str) -> str | None:
    """The layer an ort-core module belongs to (None: the ``ort`` package itself)."""
    for name, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return None


def upward_imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """ort-core imports from a module to one of a higher layer."""
    rank = {name: i for i, (name, _) in enumerate(LAYERS)}  # 0 is the top
    bad = []
    for module in sorted(graph.modules):
        source = layer_of(module)
        if source is None:
            continue
        for target in sorted(graph.find_modules_directly_imported_by(module)):
            layer = layer_of(target)
            if layer is not None and rank[layer] < rank[source]:
                bad.append((module, target))
    return bad


def _lines(items: Iterable[str]) -> str:
    return "".join(f"    {item}\n" for item in items)


def report(packages: Iterable[str] = PACKAGES) -> str:
    """The text report: per package, its module count and cycles; ort's modules per layer."""
    out = []
    for package in packages:
        try:
            graph = graph_of(package)
        except (ValueError, ModuleNotFoundError) as exc:  # not installed here
            out.append(f"{package}: not found ({exc})\n")
            continue
        found = cycles(graph)
        out.append(f"{package}: {len(graph.modules)} modules, {len(found)} import cycle(s)\n")
        for component in found:
            out.append(f"  cycle of {len(component)}: {', '.join(component)}\n")
        if package == "ort":
            counts: dict[str, int] = {}
            for module in graph.modules:
                counts[layer_of(module) or "(unlayered)"] = \
                    counts.get(layer_of(module) or "(unlayered)", 0) + 1
            out.append("  modules per layer: " + ", ".join(
                f"{name} {counts.get(name, 0)}" for name, _ in LAYERS)
                + (f", unlayered {counts['(unlayered)']}" if "(unlayered)" in counts else "")
                + "\n")
            upward = upward_imports(graph)
            out.append(f"  upward imports: {len(upward)}\n")
            out.append(_lines(f"{a} -> {b}" for a, b in upward[:20]))
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(report(sys.argv[1:] or PACKAGES))
