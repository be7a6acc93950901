"""The user database fails over: kill the PostgreSQL primary, promote a standby, lose no user.

Real servers: a primary and two streaming standbys (synchronous quorum of one), two user_service
replicas on a multi-host URL with ``target_session_attrs=read-write``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from devstack.stack import LocalStack, Replica
from tests.support.client import wait_until
from tests.support.pg_cluster import Cluster, server_binaries
from tests.support.stack import free_port

PASSWORD = "correct-horse"
# What a failover manager needs to notice a dead primary (Patroni: up to its leader TTL). The
# services must get through this window of failing writes and recover on their own.
DETECTION_SECONDS = 1.0


def _new_account() -> dict:
    name = "f" + uuid.uuid4().hex[:12]
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}


def _register(http: requests.Session, url: str, body: dict) -> int:
    try:
        response = http.post(f"{url}/users/register", json=body, timeout=10)
    except requests.RequestException:
        return 0
    if response.status_code != 201:
        print(f"register on {url}: {response.status_code} {response.text[:300]}")
    return response.status_code


@dataclass
class Writer:
    """Registers users, one after another, on alternating replicas until stopped."""

    urls: list[str]
    registered: list[tuple[float, dict]] = field(default_factory=list)
    failures: list[tuple[float, int]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        http = requests.Session()
        for n in range(10_000):
            if self.stopped.is_set():
                return
            body = _new_account()
            status = _register(http, self.urls[n % 2], body)
            if status == 201:
                self.registered.append((time.monotonic(), body))
            else:  # failed over or not, the client was told it did not work
                self.failures.append((time.monotonic(), status))
                time.sleep(0.02)

    def first_success_after(self, moment: float) -> float:
        return min(at for at, _ in self.registered if at > moment)


@pytest.fixture
def cluster():
    nodes = Cluster(server_binaries(), [free_port() for _ in range(3)])
    try:
        nodes.start(database="fitness")
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def users_on_cluster(cluster, tmp_path):
    hosts = "&".join(f"host=127.0.0.1:{node.port}" for node in cluster.nodes)
    url = f"postgresql+psycopg2://postgres@/fitness?{hosts}&target_session_attrs=read-write"
    replicas = [
        Replica("user_service", f"user_service-{n}", free_port(), free_port()) for n in (1, 2)
    ]
    stack = LocalStack(tmp_path, replicas, extra_env={"FITNESS_DATABASE_URL": url})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _can_log_in(urls: list[str], body: dict) -> bool:
    credentials = {"email": body["email"], "password": PASSWORD}
    return all(
        requests.post(f"{url}/users/login", json=credentials, timeout=10).status_code == 200
        for url in urls
    )


def test_it_keeps_registration_and_login_working_across_a_primary_failover(
    cluster, users_on_cluster, capsys
):
    urls = [replica.url for replica in users_on_cluster.replicas]
    http = requests.Session()
    before = [_new_account() for _ in range(4)]
    assert [_register(http, urls[n % 2], body) for n, body in enumerate(before)] == [201] * 4
    writer = Writer(urls)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    assert wait_until(lambda: len(writer.registered) >= 3, timeout=10)

    primary, *standbys = cluster.nodes
    killed_at = time.monotonic()
    cluster.kill(primary)
    time.sleep(DETECTION_SECONDS)
    new_primary = cluster.fail_over(standbys)
    promoted_at = time.monotonic()
    assert wait_until(lambda: writer.registered[-1][0] > promoted_at, timeout=15)
    followers = [node for node in standbys if node is not new_primary]
    cluster.require_sync(new_primary, followers)  # the other standby follows the new primary
    writer.stopped.set()
    thread.join(timeout=15)

    committed = [body for _, body in writer.registered] + before
    for body in committed:  # every acknowledged registration survived, on both replicas
        assert _can_log_in(urls, body), body["username"]
    names = ",".join(f"'{body['username']}'" for body in committed)
    sql = f"SELECT count(*) FROM users WHERE username IN ({names})"
    assert new_primary.query(sql, dbname="fitness")[0] == len(committed)
    fresh = _new_account()  # a new user registers and logs in after the failover
    assert _register(http, urls[0], fresh) == 201 and _can_log_in(urls, fresh)
    with capsys.disabled():
        print(
            f"\nPostgreSQL failover: kill -> {new_primary.name} promoted "
            f"{promoted_at - killed_at:.2f} s ({DETECTION_SECONDS} s of it 'detection'); "
            f"promoted -> first committed registration "
            f"{writer.first_success_after(promoted_at) - promoted_at:.2f} s; "
            f"{len(committed)} users committed, 0 lost; "
            f"{len(writer.failures)} registrations refused meanwhile "
            f"(statuses {sorted({s for _, s in writer.failures})})"
        )
