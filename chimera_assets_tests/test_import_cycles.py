"""No import cycle inside ``chimera_assets``.

The graph is built from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` statement counts, including those inside functions and under ``TYPE_CHECKING``
(a deferred import hides a cycle, it does not remove it). ``from chimera_assets.x import y`` is an
edge to ``chimera_assets.x.y`` when ``y`` is a submodule, else to ``chimera_assets.x``. Importing a
submodule also runs its parent packages' ``__init__``; those implicit edges are left out on purpose
(a package ``__init__`` that re-exports its own submodules would otherwise always form a loop).
"""

from __future__ import annotations

import ast
from pathlib import Path

import chimera_assets

PACKAGE = "chimera_assets"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of the package at ``root``."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, *(name.split(".") if name else [])])


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules its source imports (anywhere in the file)."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (
                    _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
                )
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in files else base)
            for target in targets:
                # ``import chimera_assets.a.b`` where only ``chimera_assets.a`` exists: the longest known prefix.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module and target.split(".")[0] == PACKAGE:
                    graph[module].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (``[a, b, ..., a]``) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):  # iterative Tarjan: the graph is a few hundred modules deep at most
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    components.append(sorted(comp))
    return [_cycle_in(graph, set(comp), comp[0]) for comp in components]


def _cycle_in(graph: dict[str, set[str]], comp: set[str], start: str) -> list[str]:
    """A shortest path start -> ... -> start inside one component (breadth first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & comp):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{start} is in a component without a cycle through it")


def test_finder_reports_a_cycle(tmp_path):
    """The finder itself: a three-module loop through a function-level ``from pkg import submodule``."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from chimera_assets.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    import chimera_assets.a\n")
    (pkg / "d.py").write_text("import chimera_assets.a\nfrom chimera_assets.sub.b import X\n")
    graph = import_graph(module_files(pkg))
    assert graph["chimera_assets.sub.b"] == {"chimera_assets.sub.c"}
    assert graph["chimera_assets.d"] == {"chimera_assets.a", "chimera_assets.sub.b"}
    assert find_cycles(graph) == [
        ["chimera_assets.a", "chimera_assets.sub.b", "chimera_assets.sub.c", "chimera_assets.a"]
    ]
    (pkg / "sub" / "c.py").write_text("import polars\n")
    assert find_cycles(import_graph(module_files(pkg))) == []


def test_no_import_cycle():
    root = Path(chimera_assets.__file__).parent
    files = module_files(root)
    graph = import_graph(files)
    assert sum(len(v) for v in graph.values()) > len(files) // 2, "the graph has (almost) no edges: parsing broke"
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in chimera_assets:\n" + "\n".join(" -> ".join(c) for c in cycles)
