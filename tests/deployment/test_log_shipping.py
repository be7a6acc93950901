"""Every process ships its ECS log events to Logstash; an outage of Logstash loses none of them.

A real TCP listener speaking json_lines stands in for Logstash's input (no Logstash here).
"""

from __future__ import annotations

import datetime as dt
import signal
import uuid

import pytest

from devstack.stack import DOCSTORE, DOCSTORE_PG, ETL, LocalStack, Replica
from fitness.logs import SHIPPER_LOGGERS
from tests.support.client import GatewayApi, wait_until
from tests.support.logstash_standin import JsonLinesListener
from tests.support.stack import free_port, gateway_tier, log_events, make_replicas

# The fields every shipped event carries, whichever process sent it (ECS, as ecs-logging writes).
ECS_FIELDS = (
    "@timestamp",
    "log.level",
    "message",
    "ecs.version",
    "service.name",
    "host.hostname",
    "process.pid",
    "log.logger",
)
SERVICES = ("gateway", "user_service", "activity_service")


def field(event: dict, path: str):
    """Return ``path`` of an ECS event, written dotted ("log.level") or nested ({"log": …})."""
    if path in event:
        return event[path]
    head, _, rest = path.partition(".")
    value = event.get(head)
    return field(value, rest) if rest and isinstance(value, dict) else None


IDENTITY = ("service.name", "process.pid", "process.thread.id", "@timestamp", "message")
TIMESTAMP = IDENTITY.index("@timestamp")


def identity(event: dict) -> tuple:
    """Return what tells one event from every other."""
    return tuple(str(field(event, key)) for key in IDENTITY)


def _now() -> str:
    """Return the time as ecs-logging writes it (UTC, milliseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def listener():
    standin = JsonLinesListener(free_port())
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def shipping_stack(tmp_path_factory, listener):
    replicas = [*make_replicas(1), *gateway_tier(1), Replica(ETL, "etl-scheduler", 0, 0)]
    env = {
        "FITNESS_LOGSTASH_HOST": "127.0.0.1",
        "FITNESS_LOGSTASH_PORT": str(listener.port),
        "FITNESS_LOGSTASH_FLUSH_SECONDS": "0.2",
    }
    stack = LocalStack(tmp_path_factory.mktemp("shipping"), replicas, extra_env=env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _start_workout(api: GatewayApi, user_id: str, token: str, trace_id: str) -> None:
    """Start a workout through the gateway: one request that reaches all three services."""
    body = {"user_id": user_id, "workout_type": "running"}
    headers = {"X-Request-ID": trace_id}
    response = api.post(f"{api.activity_url}/workouts/start", body, token, headers=headers)
    assert response.status_code == 201, response.text


def _traced(listener: JsonLinesListener, trace_id: str) -> dict[str, list[dict]]:
    by_service: dict[str, list[dict]] = {}
    for event in listener.received():
        if field(event, "trace.id") == trace_id:
            by_service.setdefault(field(event, "service.name"), []).append(event)
    return by_service


def _logged(stack: LocalStack) -> set[tuple]:
    """Return every event our processes wrote to stdout, but the shipper's own.

    The document store's processes (FerretDB, PostgreSQL) log for their operators, not to
    Logstash, like the Redis servers.
    """
    ours = [r for r in stack.replicas if r.service not in (DOCSTORE, DOCSTORE_PG)]
    return {
        identity(event)
        for replica in ours
        for event in log_events(stack.log_path(replica.name))
        if not str(field(event, "log.logger")).startswith(SHIPPER_LOGGERS)
    }


def test_it_ships_every_process_events_with_ecs_fields_and_one_correlation_id(
    shipping_stack, listener
):
    api = GatewayApi(shipping_stack)
    user_id, token = api.new_user()
    trace_id = "ship-" + uuid.uuid4().hex
    _start_workout(api, user_id, token, trace_id)

    # One request: the gateway, the activity service and the user service (gRPC GetUser).
    assert wait_until(lambda: set(SERVICES) <= set(_traced(listener, trace_id)), timeout=10)
    traced = _traced(listener, trace_id)
    assert any(field(e, "url.path") == "/workouts/start" for e in traced["gateway"])
    assert any((field(e, "rpc.method") or "").endswith("GetUser") for e in traced["user_service"])
    etl = [e for e in listener.received() if field(e, "service.name") == "etl"]
    assert any("warehouse at" in e["message"] for e in etl)
    for event in [*etl, *(e for events in traced.values() for e in events)]:
        missing = [name for name in ECS_FIELDS if field(event, name) in (None, "")]
        assert not missing, (missing, event)
    assert listener.bad_lines == []


def test_it_delivers_events_logged_while_logstash_was_down(shipping_stack, listener, capsys):
    api = GatewayApi(shipping_stack)
    listener.stop()
    down_since = _now()
    trace_id = "outage-" + uuid.uuid4().hex
    user_id, token = api.new_user()
    _start_workout(api, user_id, token, trace_id)
    # A replica that stops while Logstash is down leaves its events on disk; its successor
    # (taking the same queue) sends them.
    user_replica = shipping_stack.replicas_of("user_service")[0]
    shipping_stack.kill(user_replica.name, signal.SIGTERM)
    shipping_stack.start_replica(user_replica)
    shipping_stack.wait_ready(user_replica)
    logged = _logged(shipping_stack)
    during = {event for event in logged if event[TIMESTAMP] >= down_since}

    listener.start()

    def undelivered() -> set[tuple]:
        return logged - {identity(e) for e in listener.received()}

    # Every event: those logged while it was down, and those on the wire when it went away.
    assert wait_until(lambda: not undelivered(), timeout=20), sorted(undelivered())[:10]
    assert set(SERVICES) <= set(_traced(listener, trace_id))
    received = [identity(e) for e in listener.received()]
    with capsys.disabled():
        print(
            f"\nLog shipping outage: {len(logged)} events logged by "
            f"{len({event[:2] for event in logged})} processes, {len(during)} of them while "
            f"Logstash was down: all delivered, "
            f"{len(received) - len(set(received))} delivered twice (dropped by document id)"
        )
