"""Every Redis server asks who is calling: no login, no access; each role only what it needs.

``make up``'s servers (cache and state) turn the ``default`` user off and know one ACL user per
role (``fitness.redisconn.REDIS_ACL``). The deployed state Redis (primary, replica, Sentinels,
``tests/support/redis_ha.py``) does the same on the Sentinels too.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
import redis

from devstack import credentials
from devstack.stack import REDIS, STATE_REDIS, LocalStack, Replica
from fitness.redisconn import live_user_channel, state_redis
from tests.support.client import GatewayApi, wait_until
from tests.support.redis_ha import MASTER_NAME, RedisHA
from tests.support.stack import free_port, gateway_tier, log_events, make_replicas, running

GOAL = {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    replicas = [*make_replicas(1), *gateway_tier(gateways=1, cache_nodes=1)]
    with running(tmp_path_factory.mktemp("redis-acl"), replicas, {}) as started:
        yield started


def _anonymous(replica: Replica) -> redis.Redis:
    return redis.Redis(port=replica.http_port, socket_timeout=2)


@pytest.mark.parametrize("kind", [REDIS, STATE_REDIS])
def test_a_caller_without_credentials_or_with_wrong_ones_gets_nothing(stack, kind):
    (server,) = stack.replicas_of(kind)
    with pytest.raises(redis.AuthenticationError):
        _anonymous(server).get("anything")
    wrong = redis.Redis(port=server.http_port, username="gateway", password="guess")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    own = stack.redis_client(server)
    assert own.ping()  # the gateway's own password opens it
    # The server noted the failed login, with the user it was for.
    assert any(e["reason"] == "auth" and e["username"] == "gateway" for e in own.acl_log())


def test_the_user_service_may_only_announce_on_live_channels(stack):
    (server,) = stack.replicas_of(STATE_REDIS)
    publisher = stack.redis_client(server, role="user_service")
    assert publisher.publish(live_user_channel("u1"), "{}") >= 1  # the gateway heard it
    for forbidden in (
        lambda: publisher.get("fgt:saga:any"),
        lambda: publisher.set("fgt:saga:any", "forged"),
        lambda: publisher.publish("fgt:other", "{}"),
        lambda: publisher.config_get("requirepass"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    stolen = redis.Redis(
        port=stack.replicas_of(REDIS)[0].http_port,
        username="user_service",
        password=credentials.ensure_password(stack.data_dir, "state", "user_service"),
    )
    with pytest.raises(redis.AuthenticationError):  # it has no user on the cache at all
        stolen.ping()


def test_passwords_are_files_only_their_owner_reads_and_never_in_the_servers_config(stack):
    for kind, role in (("cache", "gateway"), ("state", "gateway"), ("state", "user_service")):
        path = credentials.password_file(stack.data_dir, kind, role)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text().strip()
        assert len(password) >= 40
        for replica in (*stack.replicas_of(REDIS), *stack.replicas_of(STATE_REDIS)):
            config = stack.data_dir / replica.name / "redis.conf"
            assert stat.S_IMODE(config.stat().st_mode) == 0o600
            assert password not in config.read_text()
    for replica in stack.replicas:  # nor in the environment a process gets
        assert not any(
            credentials.ensure_password(stack.data_dir, "state", "gateway") in value
            for value in stack.env_for(replica).values()
        )


def test_a_gateway_without_the_redis_password_is_refused(stack):
    """Its saga log is refused (503, no saga stored), its cache is skipped, and it says why."""
    gateway = Replica("gateway", "gateway-nopass", free_port(), 0)
    env = stack.env_for(stack.replicas_of("gateway")[0])
    env = {key: value for key, value in env.items() if not key.endswith("_PASSWORD_FILE")}
    for key in ("FITNESS_STATE_REDIS_URL", "FITNESS_CACHE_REDIS_URLS"):
        env[key] = ",".join(url.replace("gateway@", "") for url in env[key].split(","))
    state = stack.redis_client(stack.replicas_of(STATE_REDIS)[0])
    api = GatewayApi(stack)
    user_id, token = api.new_user()
    with running(stack.data_dir, [gateway], env):
        base = f"{gateway.url}/users/{user_id}"
        answer = api.post(f"{base}/goals", GOAL, token)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]
        statistics = api.get(f"{base}/statistics", token)
        assert statistics.status_code == 200  # the cache is skipped, not trusted
        assert statistics.headers.get("X-Cache") != "HIT"
        assert api.get(f"{base}/goals", token).json()["goals"] == []
    assert not list(state.scan_iter("fgt:saga:*"))
    events = log_events(stack.log_path("gateway-nopass"))
    assert any("authenticated" in str(event) for event in events)  # refused, and said so


def test_a_redis_url_naming_a_user_without_its_password_is_refused_at_start():
    with pytest.raises(ValueError, match="no password is set"):
        state_redis("redis://gateway@127.0.0.1:6390/0", 1.0)


@pytest.fixture(scope="module")
def state_ha(tmp_path_factory) -> Iterator[RedisHA]:
    ports = [free_port() for _ in range(5)]
    servers = RedisHA(tmp_path_factory.mktemp("redis-ha"), ports[0], ports[1], ports[2:])
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def test_sentinels_answer_only_known_roles_and_only_with_lookups(state_ha):
    sentinel_port = state_ha.sentinels[0]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=sentinel_port, socket_timeout=2).sentinel_masters()
    asker = redis.Redis(
        port=sentinel_port, username="gateway", password=state_ha.password("gateway")
    )
    assert int(asker.sentinel_get_master_addr_by_name(MASTER_NAME)[1]) == state_ha.primary
    for forbidden in (
        lambda: asker.execute_command("SENTINEL", "FAILOVER", MASTER_NAME),
        lambda: asker.sentinel_set(MASTER_NAME, "down-after-milliseconds", 1),
        lambda: asker.sentinel_remove(MASTER_NAME),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    assert state_ha.master_port() == state_ha.primary


def test_the_deployed_roles_work_through_the_sentinels(state_ha):
    gateway = state_ha.client("gateway")
    gateway.set("fgt:probe", "1")
    assert wait_until(lambda: state_ha.server(state_ha.replica).get("fgt:probe") == b"1", 10)
    publisher = state_ha.client("user_service")
    assert publisher.publish(live_user_channel("u1"), "{}") == 0
    with pytest.raises(redis.exceptions.NoPermissionError):
        publisher.get("fgt:probe")
    anonymous = state_redis(state_ha.url_for("gateway").replace("gateway@", ""), 1.0)
    with pytest.raises(redis.RedisError):
        anonymous.get("fgt:probe")
