"""The house rules, read off the source: packages depend one way, the label model is typed out once, modules stay small."""
from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest
from _imports import PKG, imports_of, module_name, package_modules

from facecurate import curate

MODULES = package_modules()
#: The guide: past this many lines a module usually holds two ideas (listed as a warning, not a failure: split where
#: the ideas part, not at a line count). The cap: past this, the test fails.
GUIDE_LINES = 350
MAX_LINES = 450


def _in(path: Path, package: str) -> bool:
    return module_name(path) == package or module_name(path).startswith(package + ".")


def test_the_resolver_sees_relative_and_lazy_imports(tmp_path):
    """The rule checks below can only fail if the import scan finds what it should: check it on a planted module."""
    planted = PKG / "curate" / "audit" / "_planted_for_test.py"
    planted.write_text("def f():\n    from ...train import fit\n    from ..labels import encode\n    import facecurate.cli\n")
    try:
        got = imports_of(planted)
    finally:
        planted.unlink()
    assert {"facecurate.train", "facecurate.train.fit", "facecurate.curate.labels", "facecurate.cli"} <= got


def test_curate_never_imports_train_or_cli():
    bad = {str(p.relative_to(PKG)): sorted(m for m in imports_of(p) if m.startswith(("facecurate.train", "facecurate.cli")))
           for p in MODULES if _in(p, "facecurate.curate")}
    assert not {k: v for k, v in bad.items() if v}


def test_train_never_imports_cli_and_reads_curate_only_through_its_public_surface():
    allowed = {f"facecurate.curate.{m}" for m in curate.PUBLIC_SURFACE}
    bad = {}
    for p in MODULES:
        if not _in(p, "facecurate.train"):
            continue
        used = {m for m in imports_of(p) if m.startswith(("facecurate.curate.", "facecurate.cli"))}
        wrong = sorted(m for m in used if m.startswith("facecurate.cli")
                       or not any(m == a or m.startswith(a + ".") for a in allowed))
        if wrong:
            bad[str(p.relative_to(PKG))] = wrong
    assert not bad


def code_only(source: str) -> str:
    """``source`` as code without comments and docstrings (``ast.unparse``: one spelling for every literal)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body[0] = ast.Pass()
    return ast.unparse(tree)


# Literal spellings of the label model: class = mask * 6 + gender * 3 + age, its inverse, the 3 x 2 x 3 cube,
# the head sizes, the photo names, the default age cut points. Only curate/labels.py may spell them out.
LABEL_MODEL_PATTERNS = {
    "class formula": re.compile(r"\*\s*6\s*\+|\*\s*3\s*\+\s*\w*age"),
    "its inverse": re.compile(r"//\s*6\b|//\s*3\)\s*%\s*2"),
    "the 18-class cube": re.compile(r"reshape\(\s*-\s*1\s*,\s*3\s*,\s*2\s*,\s*3\s*\)"),
    "head sizes": re.compile(r"'mask'\s*:\s*3\s*,\s*'gender'\s*:\s*2|'age'\s*:\s*3\s*,\s*'class'\s*:\s*18"),
    "photo names": re.compile(r"'mask1'\s*,\s*'mask2'"),
    "default age bins": re.compile(r"\(\s*30\s*,\s*60\s*\)"),
}
PLANTED = {
    "class formula": "label = m * 6 + g * 3 + a",
    "its inverse": "m, g = label // 6, label // 3 % 2",
    "the 18-class cube": "cube = p.reshape(-1, 3, 2, 3)",
    "head sizes": "HEADS = {'mask': 3, 'gender': 2, 'age': 3}",
    "photo names": 'STEMS = ("mask1", "mask2", "mask3")',
    "default age bins": "def f(bins=(30, 60)):\n    return bins",
}


@pytest.mark.parametrize("what", list(LABEL_MODEL_PATTERNS))
def test_the_label_model_is_defined_once(what):
    pattern = LABEL_MODEL_PATTERNS[what]
    assert pattern.search(code_only(PLANTED[what])), "the pattern must catch a planted copy"
    owners = [str(p.relative_to(PKG)) for p in MODULES if pattern.search(code_only(p.read_text()))]
    assert set(owners) <= {"curate/labels.py"}, f"{what} typed out in {owners}; import it from curate.labels"


def test_no_module_grows_past_the_limit():
    """The hard cap fails; the guide only warns (pytest's summary lists the modules worth a look)."""
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in MODULES}
    long = {k: n for k, n in sizes.items() if n > MAX_LINES}
    assert not long, f"split these modules along their seams: {long}"
    past_guide = {k: n for k, n in sizes.items() if GUIDE_LINES < n <= MAX_LINES}
    if past_guide:
        warnings.warn(f"past the {GUIDE_LINES}-line guide (do they hold two ideas?): {past_guide}", stacklevel=1)


def test_every_module_says_what_it_holds():
    missing = [str(p.relative_to(PKG)) for p in MODULES if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not missing


def folder_map_modules(doc: str) -> set[str]:
    """The .py paths docs/architecture.md's folder map lists (its indented tree: two spaces per folder level)."""
    tree = doc.split("## Folder map", 1)[1].split("```", 2)[1]
    folders: list[str] = []
    listed = set()
    for line in tree.splitlines():
        if not line.strip():
            continue
        level = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        folders = folders[:level]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        elif name.endswith(".py"):
            listed.add("/".join([*folders, name]))
    return listed


def test_the_folder_map_lists_every_module():
    doc = (PKG.parent / "docs" / "architecture.md").read_text()
    assert "facecurate/curate/crop/stage.py" in folder_map_modules(doc), "the map's parser must see a known module"
    listed = {m for m in folder_map_modules(doc) if m.startswith("facecurate/")}
    actual = {str(p.relative_to(PKG.parent)) for p in MODULES}
    assert not actual - listed, f"add these to docs/architecture.md's folder map: {sorted(actual - listed)}"
    assert not listed - actual, f"the folder map lists modules that do not exist: {sorted(listed - actual)}"
