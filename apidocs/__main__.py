"""``python -m apidocs``: rewrite the committed OpenAPI document, the Postman collection
and the API guide's table of error codes (docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apidocs import POSTMAN_PATH, SPEC_PATH, build_spec, to_json
from apidocs.error_table import write_guide
from apidocs.postman import build_collection


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(document), encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    spec = build_spec()
    write(SPEC_PATH, spec)
    write(POSTMAN_PATH, build_collection(spec))
    write_guide()


if __name__ == "__main__":
    main()
