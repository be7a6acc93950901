"""Reads timed at a steady pace in the background, while a bench does something heavy.

The import and login benches ask what their work does to everyone else: clients read another
user's statistics on a fixed schedule (an open loop, so a slow answer delays no later read)
before and during the work, and the two p99s are compared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests

from bench.harness.client import bearer
from bench.harness.stats import interpolated_p99

READ_TIMEOUT_SECONDS = 30.0
T = TypeVar("T")


def read_latencies(url: str, token: str, every: float, stop: threading.Event) -> list[float]:
    """Read ``url`` every ``every`` seconds (open loop) until ``stop``; return each latency."""
    took = []
    with requests.Session() as http:
        next_at = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            answer = http.get(url, headers=bearer(token), timeout=READ_TIMEOUT_SECONDS)
            took.append(time.perf_counter() - started)
            answer.raise_for_status()
            next_at += every
            time.sleep(max(0.0, next_at - time.perf_counter()))
    return took


def p99_while(
    url: str, token: str, readers: int, every: float, during: Callable[[], T]
) -> tuple[float, T]:
    """Return the p99 (seconds) of ``readers`` clients' reads of ``url``, each every ``every``
    seconds, made while ``during()`` runs; and what ``during()`` returned."""
    stop = threading.Event()
    with ThreadPoolExecutor(readers) as pool:
        started = [pool.submit(read_latencies, url, token, every, stop) for _ in range(readers)]
        try:
            result = during()
        finally:
            stop.set()
        samples = [t for reader in started for t in reader.result()]
    return interpolated_p99(samples), result
