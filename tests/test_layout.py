"""The package's layout is its pipeline: no stage imports a stage above it, and no import circle.

The order is written in `suggester/__init__.py`; this test reads every module's imports (those
inside functions and `TYPE_CHECKING` blocks too) so that the order holds as modules arrive.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "suggester"

# Lowest first. Modules not named here take their folder's rank.
RANKS = {
    "suggester.settings": 0, "suggester.errors": 0,
    "suggester.knowledge": 1,
    "suggester.search": 2, "suggester.records": 2,
    "suggester.reply": 3,
    "suggester.operations": 4,
    "suggester.service": 4, "suggester.publish": 4, "suggester.publish_lock": 4,
    "suggester.replicate": 4, "suggester.routes": 4,
    "suggester.cli": 5, "suggester.evaluation": 5,
}
# Stages of one rank that must not import each other.
SIBLINGS_APART = {("suggester.search", "suggester.records"),
                  ("suggester.records", "suggester.search")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> str | None:
    """The most specific entry of RANKS that `module` belongs to."""
    candidates = [name for name in RANKS if module == name or module.startswith(name + ".")]
    return max(candidates, key=len) if candidates else None


def _imports(path: Path) -> set[str]:
    """Every `suggester` module that `path` imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("suggester"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.startswith("suggester"):
            for alias in node.names:  # `from suggester.reply import tone` imports a module
                child = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*child.split("."))).with_suffix(".py").exists()
                found.add(child if is_module else node.module)
    return found


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_stage():
    unplaced = [m for m in GRAPH if m != "suggester" and _stage(m) is None]
    assert not unplaced, f"give these a place in RANKS and in suggester/__init__.py: {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "suggester"))
def test_no_module_imports_a_stage_above_its_own(module):
    stage = _stage(module)
    wrong = []
    for imported in sorted(GRAPH[module]):
        target = _stage(imported)
        if target is None or target == "suggester":
            continue
        if RANKS[target] > RANKS[stage] or (stage, target) in SIBLINGS_APART:
            wrong.append(f"{imported} ({target}, rank {RANKS[target]})")
    assert not wrong, f"{module} ({stage}, rank {RANKS[stage]}) imports {wrong}"


def test_no_import_circle():
    edges = {m: {i for i in deps if i in GRAPH and i != m} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(edges[module]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (circle := visit(module)):
            pytest.fail("import circle: " + " → ".join(circle))


def test_the_layout_test_sees_a_wrong_import(tmp_path):
    """The checker itself flags an upward import (a test of the test)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from suggester.service import Suggester\n", encoding="utf-8")
    assert _imports(bad) == {"suggester.service"}
    assert RANKS[_stage("suggester.service")] > RANKS[_stage("suggester.knowledge.chunks")]
