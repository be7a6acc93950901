"""The user database fails over under Patroni: SIGKILL the leader's node, lose no user.

Real processes, configured as compose runs them: three Patroni nodes with compose's own
``deploy/patroni/patroni.yml`` (only names, addresses and paths differ, ``LOCAL_KEYS``), etcd,
and two user_service replicas on the multi-host URL with ``target_session_attrs=read-write``,
as the application role ``post_bootstrap.sh`` creates. Nobody plays Patroni's part: its leader
lock expires (``ttl``) and it promotes the synchronous standby.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import psycopg2
import pytest
import requests
import yaml

from devstack.stack import Replica
from tests.support.client import wait_until
from tests.support.patroni_cluster import PATRONI_YML, PatroniCluster, post_status
from tests.support.stack import free_port, running

PASSWORD = "correct-horse"
# Patroni's leader lock outlives a dead leader by up to its ttl; then loop_wait, and promotion.
FAILOVER_TIMEOUT_SECONDS = 90.0


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


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module: the REST API test only reads and reloads; the failover
    test, last, kills its leader."""
    nodes = PatroniCluster()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def users_on_cluster(cluster, tmp_path):
    replicas = [
        Replica("user_service", f"user_service-{n}", free_port(), free_port()) for n in (1, 2)
    ]
    env = {
        "FITNESS_DATABASE_URL": cluster.url(),
        "FITNESS_DATABASE_PASSWORD": cluster.passwords["pg_app_password"],
    }
    with running(tmp_path, replicas, env) as stack:
        yield stack


def _can_log_in(urls: list[str], body: dict) -> bool:
    credentials = {"email": body["email"], "password": PASSWORD}
    return all(
        requests.post(f"{url}/users/login", json=credentials, timeout=10).status_code == 200
        for url in urls
    )


def _refuses_connections(port: int) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, connect_timeout=2).close()
    except psycopg2.OperationalError as exc:
        return "refused" in str(exc)  # not "no password": nothing listens any more
    return False


def test_the_rest_api_refuses_changes_without_its_password(cluster):
    member = cluster.members[0]
    password = cluster.passwords["patroni_restapi_password"]
    assert post_status(f"{member.api}/restart") == 401
    assert post_status(f"{member.api}/restart", "not-the-password") == 401
    assert post_status(f"{member.api}/reload", password) == 202


def test_it_keeps_registration_and_login_working_when_the_leader_node_dies(
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

    old_leader = cluster.leader()
    assert old_leader is not None
    killed_at = time.monotonic()
    cluster.kill(old_leader)
    # Its PostgreSQL died with it (its backends may take a moment to notice).
    assert wait_until(lambda: _refuses_connections(old_leader.pg_port), timeout=5)
    assert wait_until(
        lambda: (leader := cluster.leader()) is not None and leader is not old_leader,
        timeout=FAILOVER_TIMEOUT_SECONDS,
        interval=0.1,
    ), cluster.log_tail()
    promoted_at = time.monotonic()
    new_leader = cluster.leader()
    assert wait_until(lambda: writer.registered[-1][0] > promoted_at, timeout=30)
    cluster.wait_healthy(len(cluster.members) - 1)  # the other standby follows the new leader
    writer.stopped.set()
    thread.join(timeout=15)

    committed = [body for _, body in writer.registered] + before
    for body in committed:  # every acknowledged registration survived, on both replicas
        assert _can_log_in(urls, body), body["username"]
    names = ",".join(f"'{body['username']}'" for body in committed)
    sql = f"SELECT count(*) FROM users WHERE username IN ({names})"
    assert cluster.query(new_leader, sql)[0] == len(committed)
    fresh = _new_account()  # a new user registers and logs in after the failover
    assert _register(http, urls[0], fresh) == 201 and _can_log_in(urls, fresh)
    with capsys.disabled():
        print(
            f"\nPatroni failover: leader {old_leader.name} SIGKILLed -> {new_leader.name} "
            f"leader after {promoted_at - killed_at:.1f} s (ttl "
            f"{yaml.safe_load(PATRONI_YML.read_text())['bootstrap']['dcs']['ttl']} s); "
            f"new leader -> first committed registration "
            f"{writer.first_success_after(promoted_at) - promoted_at:.2f} s; "
            f"{len(committed)} users committed, 0 lost; "
            f"{len(writer.failures)} registrations refused meanwhile "
            f"(statuses {sorted({s for _, s in writer.failures})})"
        )
