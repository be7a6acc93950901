"""CPU seconds per process group and for the whole machine, read from ``/proc`` (Linux).

Every process a bench starts leads a process group of its own, so the CPU a group used is that
process's with all its children (gunicorn's workers, say). What the machine spent beyond the
groups and the bench itself is other people's work, and a bench says when that was noticeable.
"""

from __future__ import annotations

import os
from pathlib import Path

NOISY_OTHER_CPU = 0.15  # share of one core used by processes outside the benchmark


def machine_busy_seconds() -> float:
    """Return the CPU seconds every CPU of the machine has spent busy since boot."""
    user, nice, system, _idle, _iowait, irq, softirq = Path("/proc/stat").read_text().split()[1:8]
    busy = int(user) + int(nice) + int(system) + int(irq) + int(softirq)
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_by_group(groups: dict[str, int]) -> dict[str, float]:
    """Return the CPU seconds (user + system) used so far by each process group, by name."""
    names = {leader: name for name, leader in groups.items()}
    totals = dict.fromkeys(groups, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # fields after "(comm)": state ppid pgrp ... utime(12th) stime(13th)
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        name = names.get(int(fields[2]))
        if name is not None:
            totals[name] += (int(fields[11]) + int(fields[12])) / tick
    return totals


def warn_if_others_busy(other_share: float, during: str, lead: str = "") -> None:
    """Print a warning (after ``lead``) when other processes used more than
    ``NOISY_OTHER_CPU`` of a core ``during`` the measurement: the figures are then skewed."""
    if other_share > NOISY_OTHER_CPU:
        print(
            f"{lead}WARNING: other processes used up to {other_share:.0%} of a core during "
            f"{during}; these figures are skewed. Repeat on a quiet machine."
        )
