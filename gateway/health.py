"""Active health checks: every few seconds each replica's readiness route is asked."""

from __future__ import annotations

import logging
import threading

import requests

from gateway.upstream import Pool

log = logging.getLogger(__name__)


class HealthChecker:
    """Marks replicas healthy or not from ``GET /status/ready``; passive failures go to breakers."""

    def __init__(self, pools: list[Pool], interval: float, timeout: float):
        self.pools = pools
        self.interval = interval
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False

    def check_all(self) -> None:
        """Check every replica once."""
        for pool in self.pools:
            for replica in pool.replicas:
                try:
                    response = self.http.get(f"{replica.url}/status/ready", timeout=self.timeout)
                    ok = response.status_code == 200
                    replica.mark_health(ok, "" if ok else f"readiness {response.status_code}")
                except requests.RequestException as exc:
                    replica.mark_health(False, f"health check: {type(exc).__name__}")

    def run(self, stopped: threading.Event) -> None:
        """Check every ``interval`` seconds until ``stopped`` is set."""
        while not stopped.is_set():
            try:
                self.check_all()
            except Exception:  # never let the checker die; the next round tries again
                log.exception("health check round failed")
            stopped.wait(self.interval)
