"""Feature code is vectorised: no per-row Python over bars or events (whole partitions in one pass).

A static check over the feature modules: no row-wise polars/pandas APIs (``iter_rows``, ``rows``,
``map_elements``, ``apply``, ...) except to format at most a handful of rows into an error message,
and no Python loop over a frame, Series or array except the causal zig-zag state machine, which runs
once over all series together (benchmarks/bench_golden_zone.py reports its rows per second).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "chimera_assets"
FEATURE_MODULES = sorted((PKG / "features").glob("*.py"))
ROW_APIS = {"iter_rows", "rows", "row", "map_elements", "map_rows", "apply", "iterrows", "itertuples",
            "to_dicts", "to_list", "tolist"}
ALLOWED = {
    ("golden_zone.py", "zigzag_swings"),  # the documented single-pass zig-zag
}


def _owner(tree: ast.AST) -> dict[ast.AST, str]:
    owner = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for node in ast.walk(fn):
                owner.setdefault(node, fn.name)
    return owner


def _in_raise(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when the call only builds an error message (inside ``raise`` or right before one)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body):
            return True
    return False


@pytest.mark.parametrize("path", FEATURE_MODULES, ids=lambda p: p.name)
def test_no_row_wise_python_in_feature_code(path):
    tree = ast.parse(path.read_text())
    owner = _owner(tree)
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    offenders = []
    for node in ast.walk(tree):
        where = (path.name, owner.get(node))
        if where in ALLOWED:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ROW_APIS:
            if not _in_raise(node, parents):
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}() in {owner.get(node)}")
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name):
            if node.iter.func.id == "range" and "len" in ast.unparse(node.iter):
                offenders.append(f"{path.name}:{node.lineno} index loop in {owner.get(node)}")
    assert offenders == [], offenders


def test_the_check_catches_a_row_loop(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(df):\n    out = []\n    for r in df.iter_rows():\n        out.append(r)\n    return out\n")
    tree = ast.parse(bad.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") in ROW_APIS]
    assert calls
