"""Upstream replicas: health, in-flight counts, and a pybreaker breaker each, without its lock.

``pybreaker.CircuitBreaker.call()`` holds an RLock for the whole wrapped call, so wrapping each
proxied request in it would serialise all traffic to a replica. Here the request runs outside
the breaker; only its outcome is then fed through ``call()`` (a call that returns or raises at
once), which keeps pybreaker's state machine, listeners and half-open trial, and holds the lock
for microseconds.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

import pybreaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerSettings:
    """When a replica's breaker trips and how long it stays open."""

    failures: int = 5
    window_seconds: float = 10.0
    reset_seconds: float = 5.0


class UpstreamFailure(Exception):
    """A replica failed a request: connection error, timeout or 5xx."""


class _BreakerLog(pybreaker.CircuitBreakerListener):
    """Log every failure and state change, and trip on N failures within the time window."""

    def __init__(self, replica: Replica):
        self.replica = replica
        self.failures: collections.deque[float] = collections.deque()

    def failure(self, cb, exc) -> None:
        now = time.monotonic()
        self.failures.append(now)
        window = self.replica.breaker_settings.window_seconds
        while self.failures and self.failures[0] < now - window:
            self.failures.popleft()
        log.warning(
            "upstream %s failed: %s",
            self.replica.url,
            exc,
            extra={"event.action": "upstream-failure", "upstream.url": self.replica.url},
        )
        enough = len(self.failures) >= self.replica.breaker_settings.failures
        # pybreaker trips by itself on fail_max consecutive failures; this adds the window rule
        # for failures with successes in between (open() notifies state_change).
        consecutive_trip = cb.fail_counter >= cb.fail_max
        if enough and not consecutive_trip and cb.current_state == pybreaker.STATE_CLOSED:
            self.failures.clear()
            cb.open()

    def state_change(self, cb, old_state, new_state) -> None:
        log.warning(
            "breaker for %s: %s -> %s",
            self.replica.url,
            getattr(old_state, "name", old_state),
            getattr(new_state, "name", new_state),
            extra={
                "event.action": "breaker-state-change",
                "upstream.url": self.replica.url,
                "breaker.state": getattr(new_state, "name", str(new_state)),
            },
        )


@dataclass
class Replica:
    """One upstream replica as the gateway sees it."""

    service: str
    url: str
    breaker_settings: BreakerSettings = field(default_factory=BreakerSettings)
    healthy: bool = True
    in_flight: int = 0
    last_error: str = ""
    last_error_at: str = ""
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._trial_taken = False
        self.breaker = pybreaker.CircuitBreaker(
            # The window rule (in _BreakerLog) trips first; this bounds consecutive failures.
            fail_max=self.breaker_settings.failures,
            reset_timeout=self.breaker_settings.reset_seconds,
            name=self.url,
            listeners=[_BreakerLog(self)],
        )

    @property
    def breaker_state(self) -> str:
        """pybreaker's state, but "half-open" once an open breaker's reset time has passed.

        pybreaker only leaves "open" at the next call. With no traffic (a load balancer that
        stopped sending any because readiness, which counts open breakers, said no) it would
        stay "open" for ever, and the gateway would never report itself ready again.
        """
        state = self.breaker.current_state
        if state == pybreaker.STATE_OPEN and self._reset_elapsed():
            return pybreaker.STATE_HALF_OPEN
        return state

    def admit(self, ignore_health: bool = False) -> bool:
        """Take a slot for one request if the replica is healthy and its breaker lets it through."""
        with self._lock:
            if not self.healthy and not ignore_health:
                return False
            state = self.breaker.current_state
            if state == pybreaker.STATE_OPEN and not self._reset_elapsed():
                return False
            if state != pybreaker.STATE_CLOSED:
                if self._trial_taken:  # half-open: one trial request at a time
                    return False
                self._trial_taken = True
            self.in_flight += 1
            self.requests += 1
            return True

    def _reset_elapsed(self) -> bool:
        opened_at = self.breaker._state_storage.opened_at  # pybreaker keeps it only there
        reset = dt.timedelta(seconds=self.breaker.reset_timeout)
        return opened_at is None or dt.datetime.now(dt.UTC) >= opened_at + reset

    def release(self, error: Exception | None) -> None:
        """Give back the slot and feed the outcome to the breaker."""
        with self._lock:
            self.in_flight -= 1
            self._trial_taken = False
            if error is not None:
                self.last_error = str(error)[:300]
                self.last_error_at = dt.datetime.now(dt.UTC).isoformat()
        # Re-raises the failure, or CircuitBreakerError when it trips: both already handled.
        with contextlib.suppress(Exception):
            self.breaker.call(_outcome, error)

    def mark_health(self, healthy: bool, reason: str = "") -> None:
        """Record the result of an active health check."""
        if healthy != self.healthy:
            log.warning(
                "upstream %s is now %s%s",
                self.url,
                "healthy" if healthy else "unhealthy",
                f": {reason}" if reason else "",
                extra={"event.action": "upstream-health", "upstream.url": self.url},
            )
        self.healthy = healthy
        if not healthy and reason:
            self.last_error = reason
            self.last_error_at = dt.datetime.now(dt.UTC).isoformat()

    def status(self) -> dict:
        """Return what a person debugging at 3 a.m. wants to know about this replica."""
        return {
            "url": self.url,
            "healthy": self.healthy,
            "breaker": self.breaker_state,
            "in_flight": self.in_flight,
            "requests": self.requests,
            "last_error": self.last_error or None,
            "last_error_at": self.last_error_at or None,
        }


def _outcome(error: Exception | None) -> None:
    if error is not None:
        raise error


class Pool:
    """The replicas of one service; picks the least busy one that admits a request."""

    def __init__(self, service: str, replicas: list[Replica]):
        self.service = service
        self.replicas = replicas
        self._turn = 0

    def acquire(self, exclude: set[str]) -> Replica | None:
        """Return an admitted replica not in ``exclude`` (least in-flight first), or None.

        When no replica passes its health check, the ones whose breaker admits are tried all
        the same ("panic mode", as Envoy does): a stale or wrong health view then costs a fast
        connection error instead of refusing every request.
        """
        self._turn += 1
        count = len(self.replicas)
        # Rotate before sorting so ties are broken round-robin.
        rotated = [self.replicas[(self._turn + i) % count] for i in range(count)]
        candidates = sorted(rotated, key=lambda r: r.in_flight)
        panic = not any(r.healthy for r in self.replicas)
        for replica in candidates:
            if replica.url not in exclude and replica.admit(ignore_health=panic):
                return replica
        return None

    def available(self) -> int:
        """Return how many replicas are healthy with a breaker that is not open."""
        return sum(1 for r in self.replicas if r.healthy and r.breaker_state != "open")
