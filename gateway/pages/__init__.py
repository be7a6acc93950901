"""Small pages the gateway serves beside the API: ``/import``, a form to upload workout files.

Each page is one HTML file that loads nothing from elsewhere and pins its inline script by hash
in its own Content-Security-Policy ``<meta>``; the headers add what a ``<meta>`` cannot say.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("pages", __name__)
IMPORT_PAGE = Path(__file__).with_name("import.html")


@bp.get("/import")
def import_page() -> Response:
    return html_page(IMPORT_PAGE)


def html_page(path: Path) -> Response:
    """Answer with the page in ``path`` and the headers its own ``<meta>`` policy cannot set."""
    response = Response(path.read_bytes(), mimetype="text/html")
    response.headers.update(
        {
            "Content-Security-Policy": "frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
    )
    return response
