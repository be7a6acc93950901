"""The API guide's table of error codes, made from the error classes so that none is missed.

Every expected failure is a ``fitness.errors.DomainError`` subclass somewhere in the code, with
its ``code``, its HTTP status and a docstring whose first sentence says what it means to a
client. The few codes answered without such a class (the web framework's own, and the
gateway's answers for replicas that fail) are listed here. ``python -m apidocs``
writes the table into docs/api.md between the markers; a test keeps the two equal and checks
that every code written anywhere in the code is in the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

from fitness.errors import DomainError

MODULES = (
    "fitness.errors",
    "fitness.mongo",
    "fitness.rpc",
    "fitness.shedding",
    "user_service.exceptions",
    "activity_service.exceptions",
    "activity_service.exports",
    "gateway.idempotency",
    "gateway.proxy",
    "gateway.ratelimit",
    "gateway.sagas.routes",
)
"""Where the error classes are (imported so that every subclass is known)."""

OTHER_CODES = (
    (400, "bad_request", "A request that could not be read at all (e.g. a broken multipart form)."),
    (400, "invalid_json", "The body is not a JSON object."),
    (404, "not_found", "No such route."),
    (405, "method_not_allowed", "No such method on the route (a goal write sent to a service)."),
    (
        413,
        "request_entity_too_large",
        "The body is over 64 KiB (`FITNESS_MAX_BODY_BYTES`); an upload, over 1 GiB "
        "(`FITNESS_MAX_UPLOAD_BYTES`).",
    ),
    (500, "internal_error", "A bug: logged with its stack trace."),
    (503, "database_unavailable", "The user database did not answer; retry shortly."),
    (502, "upstream_failed", "A service replica failed the request, and no other could take it."),
    (504, "upstream_timeout", "No replica answered within the gateway's deadline."),
)
"""Codes answered without a DomainError class: the web framework's, the gateway's own."""

START = "<!-- error codes: written by python -m apidocs -->"
END = "<!-- end of error codes -->"
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def error_codes() -> list[tuple[int, str, str]]:
    """Return (HTTP status, code, meaning) of every error the API can answer, by status."""
    for module in MODULES:
        importlib.import_module(module)
    found: dict[tuple[int, str], str] = {}
    for cls in _subclasses(DomainError):  # a base before its subclasses: its meaning stays
        found.setdefault((cls.http_status, cls.code), _meaning(cls))
    found.update({(status, code): meaning for status, code, meaning in OTHER_CODES})
    return sorted((status, code, meaning) for (status, code), meaning in found.items())


def error_table() -> str:
    """Return the API guide's Markdown table of error codes."""
    rows = ["| status | `code` | meaning |", "|---|---|---|"]
    rows += [f"| {status} | `{code}` | {meaning} |" for status, code, meaning in error_codes()]
    return "\n".join([START, *rows, END])


def write_guide(path: Path = GUIDE) -> None:
    """Replace the table between the markers in the API guide."""
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} lacks the markers of the error table: {START} … {END}")
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    path.write_text(before + error_table() + after, encoding="utf-8")
    print(f"wrote the error codes into {path}")


def _subclasses(cls: type[DomainError]) -> Iterator[type[DomainError]]:
    sub: type[DomainError]
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _meaning(cls: type) -> str:
    """Return the first sentence of the class's docstring, Markdown-ready."""
    doc = " ".join((cls.__doc__ or "").split())
    sentence = doc.split(". ")[0].rstrip(".") + "."
    return sentence.replace("``", "`")
