"""Percentiles, computed one way per kind so that figures compare across benches and runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values (nan for none)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentile_ms(sorted_seconds: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of sorted durations in seconds, in milliseconds."""
    return percentile(sorted_seconds, fraction) * 1000


def p50_p99(values: Iterable[float]) -> tuple[float, float]:
    """Return the nearest-rank median and 99th percentile of ``values`` (in their unit)."""
    ordered = sorted(values)
    return percentile(ordered, 0.5), percentile(ordered, 0.99)


def interpolated_p99(values: Iterable[float]) -> float:
    """Return the 99th percentile as ``statistics.quantiles`` interpolates it.

    The benches that compare a p99 under load with one at rest have always used this kind; a
    nearest-rank p99 of the same samples differs, so the figures would stop comparing.
    """
    return statistics.quantiles(values, n=100)[98]
