"""What the gateway and the activity service agree on about file imports: the route, its limit."""

from __future__ import annotations

import re

IMPORT_PATH = re.compile(r"/users/[^/]+/imports")
"""``POST /users/{id}/imports``: the one route that takes a file."""

MAX_IMPORT_BYTES = 16 * 1024 * 1024
"""The largest upload: the gateway and the service answer a larger one with 413."""
