"""The saga coordinator: drive each saga step by step, compensate on failure, recover after crashes.

The saga's record is written *before* each step is attempted, so whoever picks it up after a
crash knows which step may have happened; participants apply each (saga, step) once, so
attempting it again is safe. Transient failures (a service unavailable, a deadline) are retried
with exponential backoff until the step's deadline; permanent ones (validation, not found,
conflict) go straight to compensation. Every coordinator (each gateway worker) also recovers:
it takes over open sagas whose lease expired, i.e. whose coordinator died.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from fitness import logs
from fitness.errors import DomainError, Unavailable
from gateway.sagas.goals import SAGAS, Participants, Step
from gateway.sagas.log import Saga, SagaLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoordinatorSettings:
    step_deadline_seconds: float = 5.0
    compensation_deadline_seconds: float = 30.0
    recovery_interval_seconds: float = 1.0
    workers: int = 64


class LeaseLost(Exception):
    """Another coordinator took this saga over (ours expired): stop driving it."""


class Coordinator:
    """Start, drive, compensate and recover sagas."""

    def __init__(
        self,
        saga_log: SagaLog,
        participants: Participants,
        settings: CoordinatorSettings,
        on_settled: Callable[[Saga], None] = lambda saga: None,
    ):
        self.log = saga_log
        self.participants = participants
        self.settings = settings
        self.on_settled = on_settled
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # Sagas this coordinator drives (or has queued) now. Its lease on one may run out in a
        # long call; recovery must not then start a second driver under the same owner, which
        # every checkpoint would let through (seen under load: one driver completed the saga
        # while the other compensated it, and the acknowledged goal was gone).
        self._driving: set[str] = set()
        self._driving_lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        # Made on first use, i.e. in the worker process after gunicorn's fork.
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.settings.workers, "saga")
            return self._executor

    def start(self, saga: Saga, wait_seconds: float) -> Saga:
        """Log a new saga, drive it in the background and return its state after at most
        ``wait_seconds`` (finished, or still running: the client then polls)."""
        saga.note("saga", "started", f"by {self.owner}")
        self.log.checkpoint(saga, self.owner)
        log.info("saga %s %s started", saga.type, saga.id, extra=_fields(saga))
        self._claim(saga.id)
        future = self.executor.submit(self._drive_leased, saga)
        done, _running = futures.wait([future], timeout=wait_seconds)
        if done:
            return saga
        # Still running: answer with a snapshot, not the object the driver is changing.
        try:
            return self.log.read(saga.id) or saga
        except redis.RedisError:  # the saga started; its driver will log on when Redis is back
            return Saga(saga.type, saga.user_id, {}, id=saga.id, state="running")

    def recover_once(self) -> int:
        """Take over every open saga whose coordinator is gone; return how many."""
        taken = 0
        for saga_id in self.log.open_sagas():
            if not self._claim(saga_id):
                continue  # we drive it already, even if our lease ran out during a long call
            if self._take_over(saga_id):
                taken += 1
            else:
                self._unclaim(saga_id)
        return taken

    def _take_over(self, saga_id: str) -> bool:
        if not self.log.acquire(saga_id, self.owner):
            return False  # its coordinator is alive (or another one just took it)
        saga = self.log.read(saga_id)
        if saga is None or saga.finished:
            self.log.release(saga_id, self.owner)
            return False
        saga.note("saga", "recovered", f"by {self.owner}")
        log.warning("recovering saga %s in state %s", saga.id, saga.state, extra=_fields(saga))
        self.executor.submit(self._drive_leased, saga)
        return True

    def _claim(self, saga_id: str) -> bool:
        with self._driving_lock:
            if saga_id in self._driving:
                return False
            self._driving.add(saga_id)
            return True

    def _unclaim(self, saga_id: str) -> None:
        with self._driving_lock:
            self._driving.discard(saga_id)

    def recover_forever(self, stopped: threading.Event) -> None:
        """Recover open sagas now and then every interval, until ``stopped`` is set."""
        while not stopped.is_set():
            try:
                self.recover_once()
            except redis.RedisError as exc:
                log.warning("saga recovery could not read the saga log: %s", exc)
            except Exception:  # never let recovery die; the next round tries again
                log.exception("saga recovery failed")
            stopped.wait(self.settings.recovery_interval_seconds)

    def _drive_leased(self, saga: Saga) -> None:
        token = logs.set_correlation_id(saga.correlation_id or "")
        try:
            self.drive(saga)
        except LeaseLost:
            log.warning("lost the lease on saga %s; another coordinator drives it", saga.id)
            return
        except redis.RedisError as exc:
            # Nothing after the last write happened unlogged: recovery resumes from there.
            log.error("saga log unavailable while driving %s: %s", saga.id, exc)
            return
        finally:
            self._unclaim(saga.id)
            logs.reset_correlation_id(token)
        if saga.finished:  # its last checkpoint dropped the lease
            self.on_settled(saga)
        else:  # left open: let the next recovery round take it without waiting
            self.log.release(saga.id, self.owner)

    def drive(self, saga: Saga) -> None:
        """Run the remaining steps, then any compensation, writing the log before each."""
        steps = SAGAS[saga.type]
        while saga.state == "running":
            if saga.step >= len(steps):
                self._settle(saga, "completed")
                return
            self._run_step(saga, steps[saga.step])
        if saga.state == "compensating":
            self._compensate(saga, steps)

    def _run_step(self, saga: Saga, step: Step) -> None:
        self._checkpoint(saga, step.name, "attempt")
        attempts: list[Unavailable] = []

        def attempt() -> dict | None:
            try:
                return step.action(saga, self.participants)
            except Unavailable as exc:
                attempts.append(exc)
                raise

        try:
            found = self._retrying(attempt, saga, self.settings.step_deadline_seconds)
        except Unavailable as exc:  # retries exhausted
            unknown = any(getattr(e, "maybe_applied", True) for e in attempts)
            # A timed-out call may have acted: undo this step too. Otherwise it did not.
            undo_from = saga.step if unknown else saga.step - 1
            self._start_compensation(saga, step, exc, undo_from, unknown)
        except DomainError as exc:  # refused: the step did not happen
            self._start_compensation(saga, step, exc, saga.step - 1, False)
        else:
            saga.data.update(found or {})
            saga.step += 1
            # Persisted with the next step's attempt (or the outcome): if we crash before
            # that, the step runs again, which its participant makes harmless.
            saga.note(step.name, "done")

    def _start_compensation(
        self, saga: Saga, step: Step, exc: DomainError, undo_from: int, unknown: bool
    ) -> None:
        saga.error = {**exc.to_dict()["error"], "status": exc.http_status, "step": step.name}
        saga.error["unknown_outcome"] = unknown
        saga.compensate_from = undo_from
        saga.state = "compensating"
        log.warning("saga %s step %s failed: %s", saga.id, step.name, exc, extra=_fields(saga))
        self._checkpoint(saga, step.name, "failed", exc.message)

    def _compensate(self, saga: Saga, steps: list[Step]) -> None:
        """Undo steps in reverse order, then settle; leave the saga open while an undo fails.

        The step that failed with an unknown outcome is undone first if its service answers;
        if not (it is down, so most likely the step never happened there), its undo is put off
        until the earlier steps are undone, so a dead service does not hold the others back.
        """
        unknown = saga.error.get("unknown_outcome", False) if saga.error else False
        while saga.compensate_from >= 0:
            index = saga.compensate_from
            step = steps[index]
            first_and_unknown = unknown and index == saga.step
            if step.compensation is not None and not self._undo(saga, step, first_and_unknown):
                if not first_and_unknown:
                    return  # still failing: left open, recovery tries again later
                saga.data.setdefault("deferred", []).append(index)
            saga.compensate_from -= 1
        for index in list(saga.data.get("deferred", [])):
            if not self._undo(saga, steps[index], False):
                return
            saga.data["deferred"].remove(index)
        # Nothing was applied when the very first effectful step was refused: that is "failed".
        self._settle(saga, "compensated" if saga.data.get("undid_any") else "failed")

    def _undo(self, saga: Saga, step: Step, briefly: bool) -> bool:
        compensation = step.compensation
        assert compensation is not None, "only a step with a compensation is undone"
        self._checkpoint(saga, step.name, "compensating")
        deadline = self.settings.compensation_deadline_seconds
        try:
            self._retrying(
                lambda: compensation(saga, self.participants),
                saga,
                self.settings.step_deadline_seconds if briefly else deadline,
            )
        except Unavailable as exc:
            self._checkpoint(saga, step.name, "compensation-pending", exc.message)
            return False
        saga.data["undid_any"] = True
        self._checkpoint(saga, step.name, "compensated")
        return True

    def _settle(self, saga: Saga, state: str) -> None:
        saga.state = state
        self._checkpoint(saga, "saga", state)
        log.info("saga %s %s %s", saga.type, saga.id, state, extra=_fields(saga))

    def _checkpoint(self, saga: Saga, step: str, event: str, detail: str = "") -> None:
        """Record an event in the saga's history and persist the saga (write-ahead)."""
        saga.note(step, event, detail)
        if not self.log.checkpoint(saga, self.owner):
            raise LeaseLost(saga.id)

    def _retrying(self, call: Callable[[], object], saga: Saga, deadline: float):
        retrying = Retrying(
            stop=stop_after_delay(deadline),
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
            retry=retry_if_exception_type(Unavailable),
            before_sleep=lambda _state: self._keep_lease(saga),
            reraise=True,
        )
        return retrying(call)

    def _keep_lease(self, saga: Saga) -> None:
        if not self.log.checkpoint(saga, self.owner):
            raise LeaseLost(saga.id)


def _fields(saga: Saga) -> dict[str, str]:
    return {
        "event.action": "saga",
        "saga.id": saga.id,
        "saga.type": saga.type,
        "saga.state": saga.state,
        "user.id": saga.user_id,
    }
