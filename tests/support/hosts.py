"""Names for local servers in /etc/hosts, as compose's network gives its containers theirs.

Each name gets an address of its own on the loopback network (all of 127.0.0.0/8 reaches this
machine), so a server announced under the wrong name is not reached by accident. The block is
marked with the process and a run id and removed on exit; the names of a run killed before it
could clean up go at the start of the next. Needs root; ``available()`` says whether it can.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

HOSTS_FILE = Path("/etc/hosts")
# 127.77.x.y: far from 127.0.0.1 and from what other tools on the machine use.
_NETWORK = "127.77"
# Ends each line this module adds, with the pid of the process that added it.
_MARK = "# fitness-test"


def available() -> bool:
    """Return whether this process may add names to /etc/hosts."""
    return os.geteuid() == 0 and os.access(HOSTS_FILE, os.W_OK)


@contextlib.contextmanager
def names(*wanted: str) -> Iterator[dict[str, tuple[str, str]]]:
    """Give each of ``wanted`` a unique host name and loopback address for the ``with`` block;
    yield ``{wanted: (hostname, address)}``."""
    with _block({name: 1 for name in wanted}) as given:
        yield {name: (hostname, addresses[0]) for name, (hostname, addresses) in given.items()}


@contextlib.contextmanager
def name_with_addresses(wanted: str, count: int) -> Iterator[tuple[str, list[str]]]:
    """Give ``wanted`` a unique host name with ``count`` addresses (as a headless Service's name
    has one per pod); yield ``(hostname, addresses)``."""
    with _block({wanted: count}) as given:
        yield given[wanted]


@contextlib.contextmanager
def _block(wanted: dict[str, int]) -> Iterator[dict[str, tuple[str, list[str]]]]:
    """Add a marked block of names, each with its number of addresses; remove it after."""
    _forget_dead_runs()
    run = uuid.uuid4().hex[:8]
    marker = f"{_MARK} {os.getpid()} {run}"
    octet = int(run[:2], 16) % 250
    hosts = iter(range(1, 255))
    given = {
        name: (f"{name}-{run}", [f"{_NETWORK}.{octet}.{next(hosts)}" for _ in range(count)])
        for name, count in wanted.items()
    }
    lines = [
        f"{address} {hostname} {marker}\n"
        for hostname, addresses in given.values()
        for address in addresses
    ]
    text = HOSTS_FILE.read_text()
    HOSTS_FILE.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "".join(lines))
    try:
        yield given
    finally:
        _keep(lambda line: marker not in line)


def _forget_dead_runs() -> None:
    """Remove the names of runs whose process is gone (killed before it could clean up)."""

    def alive(line: str) -> bool:
        _, mark, rest = line.partition(_MARK)
        if not mark:
            return True
        try:
            pid = int(rest.split()[0])
            if pid <= 0:
                return False
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    _keep(alive)


def _keep(wanted: Callable[[str], bool]) -> None:
    lines = HOSTS_FILE.read_text().splitlines(True)
    kept = [line for line in lines if wanted(line)]
    if len(kept) != len(lines):
        HOSTS_FILE.write_text("".join(kept))
