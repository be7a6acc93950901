"""What the gateway and the activity service agree on about file imports: the route, its limits."""

from __future__ import annotations

import re

IMPORT_PATH = re.compile(r"/users/[^/]+/imports")
"""``POST /users/{id}/imports``: the one route that takes a file."""

MAX_UPLOAD_BYTES = 1024 * 2**20
"""The default of ``FITNESS_MAX_UPLOAD_BYTES``: the largest upload, which only a zip archive may
reach (a Strava export of years, media included). The gateway and the service answer a larger
body with 413; neither holds it in memory (it is spooled to a temporary file)."""

MAX_FILE_BYTES = 16 * 2**20
"""The largest single activity file (GPX, TCX, FIT, CSV, each maybe gzipped): 413 past it."""

SPOOL_BYTES = 2**20
"""Bodies larger than this wait in a temporary file, not in memory, until they are read."""
