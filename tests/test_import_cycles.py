"""No import circle inside the package: module-level, lazy (inside functions) and ``TYPE_CHECKING`` imports all count.

A circle works by luck of import order (or only because one side imports lazily) and makes both modules one idea
split in two files: move what both need into a module they both import. Imports are read off the source the way
tests/test_architecture.py reads them (``_imports.py``); the circles are found with a depth-first search.
"""
from __future__ import annotations

from pathlib import Path

from _imports import PKG, import_statements, module_name, package_modules


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """module -> the package's modules it imports. ``from m import x`` points at submodule m.x when x is one, else at m;
    a package's ``__init__`` that runs on the way is not an edge (Python has it half-built, which is not a circle)."""
    paths = package_modules(pkg)
    known = {module_name(p, pkg) for p in paths}
    graph: dict[str, set[str]] = {}
    for p in paths:
        me = module_name(p, pkg)
        edges = set()
        for mod, names in import_statements(p, pkg):
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in known]
            edges.update(subs)
            if mod in known and (not names or len(subs) < len(names)):  # a name that is not a submodule comes from mod
                edges.add(mod)
        graph[me] = edges - {me}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle met by a depth-first search (one per back edge), as [a, b, ..., a], in a stable order."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "planted"


def test_the_search_finds_planted_circles(tmp_path):
    """The check can only fail if it sees circles: a lazy one, a TYPE_CHECKING one, and a package that only
    re-exports is not one."""
    pkg = _write(tmp_path, {
        "planted/__init__.py": '"""p."""\nfrom .a import f\nfrom .clean import h\n',
        "planted/a.py": '"""a."""\nfrom .b import g\n\ndef f():\n    return g()\n',
        "planted/b.py": '"""b."""\ndef g():\n    from .a import f\n    return f\n',
        "planted/c.py": '"""c."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n',
        "planted/d.py": '"""d."""\nfrom . import c\nD = c\n',
        "planted/clean.py": '"""uses the package\'s other modules, none uses it."""\nfrom . import a\nfrom .sub import kk\n\nh = a\n',
        "planted/sub/__init__.py": '"""sub."""\nfrom .k import kk\n',
        "planted/sub/k.py": '"""k."""\nfrom ..a import f as kk\n',
    })
    graph = import_graph(pkg)
    assert graph["planted.a"] == {"planted.b"} and graph["planted.b"] == {"planted.a"}
    assert graph["planted.clean"] == {"planted.a", "planted.sub"}
    cycles = find_cycles(graph)
    assert sorted(sorted(set(c)) for c in cycles) == [["planted.a", "planted.b"], ["planted.c", "planted.d"]], cycles


def test_no_import_circle_inside_the_package():
    graph = import_graph()
    assert len(graph) > 50 and graph["facecurate.curate.crop.stage"], "the graph must see the package's imports"
    cycles = find_cycles(graph)
    assert not cycles, "import circles (move what both sides need into a module they both import):\n" + \
        "\n".join(" -> ".join(c) for c in cycles)
