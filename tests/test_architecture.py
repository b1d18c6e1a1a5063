"""Imports point down the layers: the import graph of corpusforge and the trainer, every import counted (function-level
ones too, which are often there only to dodge a circle), has no circle beyond those listed in KNOWN — none now. A new
one fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

ROOTS = {"corpusforge": REPO / "corpusforge", "corpusforge_trainer": REPO / "trainer"}
# circles that remain (each a strongly connected component of the graph); see docs/architecture.md
KNOWN: set[frozenset[str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for package, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in map(known, targets) if t and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.add(frozenset(component))
    return found


def test_no_import_circle_beyond_the_known_ones():
    graph = import_graph()
    assert len(graph) > 90 and sum(map(len, graph.values())) > 250  # the scan found the package
    new = circles(graph) - KNOWN
    assert not new, f"new import circle(s): {[sorted(c) for c in new]}"


def test_the_scan_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}
    assert circles({"a": {"b"}, "b": set()}) == set()


def test_code_left_out_of_the_build_fingerprint_is_not_imported_by_a_build():
    """The code fingerprint (a resume refuses other code) leaves out what never shapes rows (NOT_OUTPUT_CODE). That
    holds only while no module that builds imports one of them; the two that do run after the rows are final."""
    from corpusforge.runner.plan import NOT_OUTPUT_CODE

    def left_out(name: str) -> bool:
        if not name.startswith("corpusforge.") or name.startswith("corpusforge_trainer"):
            return True  # the trainer is not part of a build
        path = modules()[name].relative_to(ROOTS["corpusforge"]).as_posix()
        return path.startswith(NOT_OUTPUT_CODE)

    after_the_rows = {
        ("corpusforge.runner.finalize", "corpusforge.report"),
        ("corpusforge.runner.run", "corpusforge.publish"),
    }
    graph = import_graph()
    crossings = {
        (name, target)
        for name, targets in graph.items()
        if not left_out(name) and name != "corpusforge"
        for target in targets
        if left_out(target) and target.startswith("corpusforge.")
    }
    assert crossings == after_the_rows
