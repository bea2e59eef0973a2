"""The layers of docs/architecture.md hold: the pure layers import neither Dagster nor the Dagster
layer, and the shared Dagster layer (``lib``) imports no domain package (``defs``).

Read from the source with ``ast`` (nothing is imported), imports inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import chimera_assets
from chimera_assets_tests.test_import_cycles import import_graph, module_files

PKG = "chimera_assets"
PURE_PACKAGES = ("features", "training", "quality", "ingest", "dbn", "warehouse", "demo")
CORE_MODULES = ("settings", "schemas", "table_spec", "universe", "config_yaml", "trade_calendar", "products", "universe_init",
                "output_target")
DAGSTER_LAYER = (f"{PKG}.lib", f"{PKG}.defs", f"{PKG}.definitions", f"{PKG}.cli", f"{PKG}.prune_cli",
                 f"{PKG}.universe_cli")


def _layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return "package"
    if parts[1] in PURE_PACKAGES or parts[1] in CORE_MODULES:
        return "pure"
    return parts[1]


def _external_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def _files() -> dict[str, Path]:
    return module_files(Path(chimera_assets.__file__).parent)


def test_every_module_has_a_layer():
    # A new top-level module must be placed in a layer (here and in docs/architecture.md).
    known = {"pure", "lib", "defs", "definitions", "cli", "prune_cli", "universe_cli", "package"}
    assert {m: _layer_of(m) for m in _files() if _layer_of(m) not in known} == {}


def test_pure_layers_import_neither_dagster_nor_the_dagster_layer():
    files = _files()
    graph = import_graph(files)
    bad = {}
    for module, path in files.items():
        if _layer_of(module) != "pure":
            continue
        wrong = sorted(t for t in graph[module] if t.startswith(DAGSTER_LAYER))
        wrong += sorted(x for x in _external_imports(path) if x in ("dagster", "dagster_gcp"))
        if wrong:
            bad[module] = wrong
    assert bad == {}, f"pure modules that import the Dagster layer: {bad}"


def test_lib_imports_no_domain_package():
    graph = import_graph(_files())
    bad = {m: sorted(t for t in deps if t.startswith(f"{PKG}.defs") or t == f"{PKG}.definitions")
           for m, deps in graph.items() if m.startswith(f"{PKG}.lib")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_no_module_over_450_lines():
    # Issue 17: a module that grows past this mixes concerns; split it along them.
    long = {m: n for m, p in _files().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert long == {}
