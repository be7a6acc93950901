"""Who may import whom (docs/architecture.md): the parts meet through contracts and `fitness`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import PARTS, REPO_ROOT

ROOT = REPO_ROOT
ALLOWED = {
    "fitness": {"fitness"},
    "user_service": {"fitness", "user_service"},
    "activity_service": {"fitness", "activity_service"},
    "gateway": {"fitness", "gateway"},
    "etl": {"fitness", "etl"},
}
"""For each part, the parts (of ``PARTS``) its modules may import."""


def imported_parts(path: Path) -> set[tuple[int, str]]:
    """Return (line, part) for every import of one of ``PARTS`` in the module at ``path``,
    at any depth (an import inside a function counts: it loads the module all the same)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in PARTS}
    return found


@pytest.mark.parametrize("part", PARTS)
def test_a_part_imports_only_what_the_architecture_allows(part):
    modules = [p for p in (ROOT / part).rglob("*.py") if "v1" not in p.relative_to(ROOT).parts]
    assert modules, f"{part} has no modules"
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {other}"
        for path in modules
        for line, other in sorted(imported_parts(path))
        if other not in ALLOWED[part]
    ]
    assert broken == []


def test_the_check_sees_an_import_it_must_refuse(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from user_service.models import Goal\n")
    assert imported_parts(module) == {(2, "user_service")}
