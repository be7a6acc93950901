"""The state Redis fails over: kill its primary; Sentinel promotes the replica, the gateway follows.

As compose runs them, the servers and Sentinels know each other by host name (names in
/etc/hosts, each on an address of its own: ``tests.support.hosts``; by address where this
process may not add names), and the gateway finds them by name.

Sagas acknowledged before the kill are still in the saga log and finish; new sagas complete on
the new primary. Replication is asynchronous, so the test also measures how many acknowledged
plain writes a failover loses, next to writes confirmed with ``WAIT 1``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import pytest
import redis

from devstack.stack import Replica
from tests.support import hosts
from tests.support.client import GatewayApi, wait_until
from tests.support.redis_ha import RedisHA
from tests.support.stack import free_port, make_replicas, running

GOAL = {"goal_type": "workout_count", "target_value": 4, "target_date": "2099-01-01"}
TERMINAL = {"completed", "compensated", "failed"}
QUICK_SAGAS = {
    "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "2",
    "FITNESS_SAGA_LEASE_SECONDS": "2",
    "FITNESS_SAGA_RECOVERY_SECONDS": "0.5",
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
    "FITNESS_STATE_REDIS_TIMEOUT_SECONDS": "1",
}


@dataclass
class SagaWriter:
    """Creates goals through the gateway one after another, remembering every answer."""

    api: GatewayApi
    user_id: str
    token: str
    answers: list[tuple[float, int, str]] = field(default_factory=list)  # (sent at, status, id)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        url = f"{self.api.user_url}/users/{self.user_id}/goals"
        while not self.stopped.is_set():
            sent_at = time.monotonic()
            try:
                response = self.api.post(url, GOAL, self.token)
                answer = (response.status_code, response.headers.get("X-Saga-ID", ""))
            except OSError:
                answer = (0, "")
            self.answers.append((sent_at, *answer))
            if answer[0] not in (201, 202):
                time.sleep(0.05)

    def acknowledged(self) -> list[str]:
        """Return the ids of the sagas the gateway accepted (201 done, 202 still running)."""
        return [saga for _, status, saga in self.answers if status in (201, 202)]

    def first_completed_after(self, moment: float) -> float:
        """Return when the first request sent after ``moment`` that completed its saga was sent."""
        return min(at for at, status, _ in self.answers if status == 201 and at > moment)

    def refused(self) -> list[int]:
        return [status for _, status, _ in self.answers if status not in (201, 202)]


@dataclass
class KeyWriter:
    """Writes keys as fast as it can through Sentinel; with ``wait``, each confirmed by WAIT 1."""

    servers: RedisHA
    wait: bool
    acknowledged: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = self.servers.client()
        prefix = "waited" if self.wait else "plain"
        for n in range(10**9):
            if self.stopped.is_set():
                return
            key = f"{prefix}:{n}"
            try:
                client.set(key, n)
                if self.wait and client.wait(1, 1000) < 1:
                    continue  # not confirmed by the replica: not counted as acknowledged
            except redis.RedisError:
                time.sleep(0.01)
                continue
            self.acknowledged.append(key)


@pytest.fixture
def state_ha(tmp_path):
    ports = [free_port() for _ in range(5)]
    wanted = ("state-redis-1", "state-redis-2", "sentinel-1", "sentinel-2", "sentinel-3")
    named = hosts.names(*wanted) if hosts.available() else contextlib.nullcontext({})
    with named as given:
        names = dict(zip(ports, given.values(), strict=False))
        servers = RedisHA(tmp_path / "redis", ports[0], ports[1], ports[2:], names=names)
        try:
            servers.start()
            yield servers
        finally:
            servers.stop()


@pytest.fixture
def gateway_on_sentinels(state_ha, tmp_path):
    replicas = [*make_replicas(1), Replica("gateway", "gateway-1", free_port(), 0)]
    env = {
        **QUICK_SAGAS,
        **state_ha.env("gateway"),
        "FITNESS_STATE_REDIS_WAIT_COUNT": "1",
    }
    with running(tmp_path / "stack", replicas, env) as stack:
        yield stack


def _saga_state(api: GatewayApi, saga_id: str, token: str) -> str:
    response = api.get(f"{api.user_url}/sagas/{saga_id}", token)
    return response.json()["state"] if response.status_code == 200 else str(response.status_code)


def _primary_port(servers: RedisHA) -> int | None:
    """Return the primary's port as the Sentinels name it, or None while one does not answer
    (a Sentinel busy with the failover may time out)."""
    try:
        return servers.master_port()
    except redis.RedisError:
        return None


def _start(*workers) -> list[threading.Thread]:
    threads = [threading.Thread(target=worker.run, daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    return threads


def test_it_keeps_the_saga_log_and_follows_the_new_primary_after_a_failover(
    state_ha, gateway_on_sentinels, capsys
):
    api = GatewayApi(gateway_on_sentinels)
    user_id, token = api.new_user()
    sagas = SagaWriter(api, user_id, token)
    plain, waited = KeyWriter(state_ha, wait=False), KeyWriter(state_ha, wait=True)
    threads = _start(sagas, plain, waited)
    assert wait_until(lambda: len(sagas.acknowledged()) >= 3, timeout=15)

    killed_at = time.monotonic()
    state_ha.kill(state_ha.primary)
    assert wait_until(lambda: _primary_port(state_ha) == state_ha.replica, timeout=20)
    promoted_at = time.monotonic()
    # The Sentinels name the new primary as compose's clients need it: by its host name.
    assert state_ha.master_address() == (state_ha.host(state_ha.replica), state_ha.replica)
    assert wait_until(lambda: any(at > promoted_at for at, s, _ in sagas.answers if s == 201))
    for worker in (sagas, plain, waited):
        worker.stopped.set()
    for thread in threads:
        thread.join(timeout=15)

    acknowledged = sagas.acknowledged()
    states = {saga: _saga_state(api, saga, token) for saga in acknowledged}
    assert wait_until(
        lambda: (
            states.update({s: _saga_state(api, s, token) for s in states})
            or set(states.values()) <= TERMINAL
        ),
        timeout=20,
    ), states  # none lost (a 404 would say so), every one finished
    new_primary = state_ha.server(state_ha.replica)
    lost_plain = sum(not new_primary.exists(key) for key in plain.acknowledged)
    lost_waited = sum(not new_primary.exists(key) for key in waited.acknowledged)
    assert lost_waited == 0
    with capsys.disabled():
        print(
            f"\nRedis failover ({'host names' if state_ha.names else 'addresses'}): "
            f"kill -> replica promoted {promoted_at - killed_at:.2f} s; "
            f"first goal request sent after the kill that completed its saga was sent "
            f"{sagas.first_completed_after(killed_at) - killed_at:.2f} s after it; "
            f"{len(acknowledged)} sagas acknowledged, 0 lost, all finished "
            f"({sorted(set(states.values()))}); {len(sagas.refused())} refused meanwhile "
            f"(statuses {sorted(set(sagas.refused()))}); raw writes lost: {lost_plain} of "
            f"{len(plain.acknowledged)} plain SET, {lost_waited} of "
            f"{len(waited.acknowledged)} SET + WAIT 1"
        )
