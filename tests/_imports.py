"""The package's imports read off the source (no module is imported): what tests/test_architecture.py and
tests/test_import_cycles.py check the house rules on."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "facecurate"


def package_modules(pkg: Path = PKG) -> list[Path]:
    """Every .py file of the package ``pkg``, sorted."""
    return sorted(pkg.rglob("*.py"))


def module_name(path: Path, pkg: Path = PKG) -> str:
    """The dotted name of the module at ``path`` (a package's ``__init__.py`` is the package)."""
    parts = path.relative_to(pkg.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(path: Path, pkg: Path = PKG) -> list[tuple[str, list[str]]]:
    """(module, names) for every import anywhere in the file (lazy ones inside functions, ``TYPE_CHECKING`` ones
    too), the module resolved to an absolute name; ``import a.b`` is ("a.b", []), ``from .x import y`` ("pkg.x", ["y"])."""
    name = module_name(path, pkg)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, [a.name for a in node.names]))
    return found


def imports_of(path: Path, pkg: Path = PKG) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (lazy imports inside functions too), resolved to absolute
    names; ``from m import x`` gives both m and m.x (x may be a submodule)."""
    found = set()
    for mod, names in import_statements(path, pkg):
        found.add(mod)
        found.update(f"{mod}.{n}" for n in names)
    return found
