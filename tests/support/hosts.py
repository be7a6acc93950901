"""Names for local servers in /etc/hosts, as compose's network gives its containers theirs.

Each name gets an address of its own on the loopback network (all of 127.0.0.0/8 reaches this
machine), so a server announced under the wrong name is not reached by accident. The block is
marked with a run id and removed on exit. Needs root; ``available()`` says whether it can.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

HOSTS_FILE = Path("/etc/hosts")
# 127.77.x.y: far from 127.0.0.1 and from what other tools on the machine use.
_NETWORK = "127.77"


def available() -> bool:
    """Return whether this process may add names to /etc/hosts."""
    return os.geteuid() == 0 and os.access(HOSTS_FILE, os.W_OK)


@contextlib.contextmanager
def names(*wanted: str) -> Iterator[dict[str, tuple[str, str]]]:
    """Give each of ``wanted`` a unique host name and loopback address for the ``with`` block;
    yield ``{wanted: (hostname, address)}``."""
    run = uuid.uuid4().hex[:8]
    marker = f"# fitness-test {run}"
    octet = int(run[:2], 16) % 250
    given = {
        name: (f"{name}-{run}", f"{_NETWORK}.{octet}.{n + 1}") for n, name in enumerate(wanted)
    }
    lines = [f"{address} {hostname} {marker}\n" for hostname, address in given.values()]
    text = HOSTS_FILE.read_text()
    HOSTS_FILE.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "".join(lines))
    try:
        yield given
    finally:
        kept = [line for line in HOSTS_FILE.read_text().splitlines(True) if marker not in line]
        HOSTS_FILE.write_text("".join(kept))
