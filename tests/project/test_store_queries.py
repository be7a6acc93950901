"""Documents known by id are read and changed one ``_id`` equality each (``fitness.mongo``).

FerretDB v1 pushes only equality down to PostgreSQL: ``{"_id": {"$in": ids}}`` decodes the whole
collection in Go. In an archive import that was most of FerretDB's CPU (docs/activity-store.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import PARTS, REPO_ROOT

KNOWN = {"etl/sources.py"}
"""Allowed for now: the ETL's retry of rejected rows (rare; see issue 18's closing note)."""


def id_in_queries(path: Path) -> list[int]:
    """Return the lines of ``path`` with a dict literal ``{"_id": {"$in": …}}``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and key.value == "_id"
                and isinstance(value, ast.Dict)
                and any(isinstance(k, ast.Constant) and k.value == "$in" for k in value.keys)
            ):
                found.append(node.lineno)
    return found


def test_no_service_reads_or_changes_documents_by_an_id_list():
    modules = [p for part in PARTS for p in (REPO_ROOT / part).rglob("*.py")]
    assert modules
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in modules
        if str(path.relative_to(REPO_ROOT)) not in KNOWN
        for line in id_in_queries(path)
    ]
    assert found == [], "use mongo.find_each / mongo.update_each"


def test_the_check_sees_an_id_list(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('q = {"user_id": u}\nc.find({"_id": {"$in": ids}})\n')
    assert id_in_queries(module) == [2]
