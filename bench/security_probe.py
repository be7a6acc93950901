"""Security probe: authorization matrix, injections, odd ids, brute force, gRPC, Redis, logs.

Starts a private stack (two replicas of each service, two gateways, a cache server and the
state Redis) in a temporary directory, runs the probes that the security tests run (the same
functions, from ``tests/support/hostile.py`` and ``tests/support/hostile_input.py``), scans every
log file of the run for secrets, and saves the rows as the ``security`` suite of the results
table.

In these rows "succeeded" means the hostile request was correctly refused (the expected 4xx
with a JSON error) or, for input that is plain data (SQL quotes in a password), handled as
data; "failed_other" means any other answer; "lost" counts another user's data in an answer,
invalid data found in the stores afterwards, or a secret found in a log.

    .venv/bin/python -m bench.security_probe [--rounds N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.harness.results import Row, Suite, command_line, save
from devstack import credentials
from fitness import mtls
from fitness.v1 import activity_pb2, user_pb2
from tests.support.hostile import (
    SPEC,
    STACK_ENV,
    Tally,
    Target,
    authorization_matrix,
    foreign_ids_under_own_path,
    full_flow,
    scan_logs,
    secret_fragments,
)
from tests.support.hostile_input import (
    login_brute_force,
    nosql_injection,
    oversized_bodies,
    path_traversal,
    sql_injection,
)
from tests.support.stack import gateway_tier, grpc_channel, make_replicas, running

NOTES = (
    "security rows: succeeded = refused as expected (or plain data kept as data); "
    "lost = another user's data shown, bad data stored, or a secret in a log"
)


def run_probes(one: Target, two: Target, rounds: int) -> list[tuple[Tally, str, str]]:
    """Run every probe (the input probes ``rounds`` times); return (tally, tried, amount)."""
    both = "one victim, one attacker"
    found = [
        (authorization_matrix(one, SPEC), "every protected operation of openapi.json", both),
        (foreign_ids_under_own_path(two), "GET/PATCH/DELETE of a goal id not one's own", both),
    ]
    probes = [
        (nosql_injection, "$-operators in body fields, keys, ids, query strings"),
        (sql_injection, "SQL in register, login, profile and goal fields, and ids"),
        (lambda t: oversized_bodies(t, SPEC), "> 64 KiB, chunked 256 KiB, 20k-deep JSON"),
        (path_traversal, "traversal, encoded / ? #, NUL, unicode, 2000/5000-char ids"),
    ]
    for probe, tried in probes:
        tallies = [probe(one if n % 2 == 0 else two) for n in range(rounds)]
        found.append((_merge(tallies), tried, f"{rounds} rounds over 2 gateways"))
    guesses = login_brute_force(two)
    found.append((guesses, "wrong passwords for one account", f"{guesses.sent} guesses"))
    return found


def grpc_probes(stack, stranger_dir: Path) -> list[tuple[Tally, str, str]]:
    """Call every replica's gRPC port in plaintext, with another CA's certificate, and every
    method with each role it does not allow (mutual TLS and ``mtls.CALLERS``)."""
    replicas = [r for r in stack.replicas if r.grpc_port]
    handshakes = Tally("grpc")
    mtls.ensure_material(stranger_dir)
    stranger = mtls.identity({"DATA_DIR": "", "TLS_DIR": str(stranger_dir)}, "gateway")
    for replica in replicas:
        plain = grpc.insecure_channel(replica.grpc_target)
        foreign = mtls.channel(replica.grpc_target, stranger, replica.service)
        for channel, what in ((plain, "plaintext"), (foreign, "another CA")):
            code = _health(channel)
            handshakes.check(code == grpc.StatusCode.UNAVAILABLE, f"{what}: {code}")
    callers = Tally("grpc")
    for method, allowed in mtls.CALLERS.items():
        service = _SERVICES.get(method.split("/")[1])
        for role in sorted(set(mtls.ROLES) - allowed) if service else []:
            replica = stack.replicas_of(service[0])[0]
            code = _call(grpc_channel(stack, replica, role), method, service[1])
            callers.check(code == grpc.StatusCode.PERMISSION_DENIED, f"{role} {method}: {code}")
            callers.lost += code == grpc.StatusCode.OK
    per_replica = f"{len(replicas)} replicas"
    return [
        (handshakes, "gRPC in plaintext and with another CA's certificate", per_replica),
        (callers, "every gRPC method, called by each role it does not allow", "one replica"),
    ]


def redis_probes(stack) -> list[tuple[Tally, str, str]]:
    """Call every Redis server of the stack with no login, a wrong password, and as the user
    service (whose ACL user may only PUBLISH goal notices): reads, writes and admin commands."""
    servers = [*stack.replicas_of("redis"), *stack.replicas_of("state_redis")]
    strangers, publisher = Tally("redis"), Tally("redis")
    attempts = {
        "GET": lambda c: c.get("fgt:saga:probe"),
        "SET": lambda c: c.set("fgt:probe:forged", "1"),
        "CONFIG SET": lambda c: c.config_set("appendonly", "no"),
        "FLUSHALL": lambda c: c.flushall(),
        "PUBLISH elsewhere": lambda c: c.publish("fgt:other", "{}"),
    }
    for server in servers:
        anonymous = redis.Redis(port=server.http_port, socket_timeout=5)
        wrong = redis.Redis(port=server.http_port, username="gateway", password="guess")
        as_user_service = _as_user_service(stack, server)
        for name, attempt in attempts.items():
            for client, tally, what in (
                (anonymous, strangers, "no login"),
                (wrong, strangers, "wrong password"),
                (as_user_service, publisher, "user_service"),
            ):
                refused = _refused(attempt, client)
                tally.check(refused, f"{what} {name} on {server.name}")
                tally.lost += not refused and name != "GET"
    servers_tried = f"{len(servers)} servers"
    return [
        (strangers, "Redis commands, no login or a wrong password", servers_tried),
        (publisher, "Redis commands beyond PUBLISH, as the user service", servers_tried),
    ]


def _as_user_service(stack, server):
    """The user service's login, also tried where it has none (as a stolen one would be)."""
    password = credentials.ensure_password(stack.data_dir, "state", "user_service")
    return redis.Redis(
        port=server.http_port, username="user_service", password=password, socket_timeout=5
    )


def _refused(attempt, client) -> bool:
    try:
        attempt(client)
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError):
        return True
    except redis.RedisError:
        return False
    return False


_SERVICES = {
    "fitness.v1.UserService": ("user_service", user_pb2),
    "fitness.v1.ActivityService": ("activity_service", activity_pb2),
}


def _health(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _call(channel: grpc.Channel, method: str, messages) -> grpc.StatusCode:
    """Call ``method`` with an empty request (the caller check comes before reading it)."""
    service, name = method.strip("/").split("/")
    descriptor = messages.DESCRIPTOR.services_by_name[service.split(".")[-1]]
    request = getattr(messages, descriptor.methods_by_name[name].input_type.name)
    call = channel.unary_unary(method, request_serializer=request.SerializeToString)
    try:
        call(request(), timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _merge(tallies: list[Tally]) -> Tally:
    total = Tally(tallies[0].area)
    for tally in tallies:
        total.sent += tally.sent
        total.succeeded += tally.succeeded
        total.failed_other += tally.failed_other
        total.lost += tally.lost
        total.problems += tally.problems
    return total


def to_row(tally: Tally, tried: str, amount: str, notes: str = "") -> Row:
    if tally.problems:
        notes = (notes + "; first problem: " + tally.problems[0]).lstrip("; ")
    return Row(
        area="security",
        tried=f"{tally.area}: {tried}",
        amount=amount,
        sent=tally.sent,
        succeeded=tally.succeeded,
        failed_clear=0,
        failed_other=tally.failed_other,
        lost=tally.lost,
        notes=notes[:300],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="repeats of the input probes")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="security-probe-") as tmp:
        data_dir = Path(tmp)
        replicas = make_replicas(2) + gateway_tier(2, 1)
        with running(data_dir, replicas, {**STACK_ENV, "FITNESS_LOG_LEVEL": "DEBUG"}) as stack:
            gateways = stack.replicas_of("gateway")
            one, two = (Target(g.url, data_dir, stack.mongo_url) for g in gateways)
            tallies = run_probes(one, two, args.rounds)
            tallies += grpc_probes(stack, data_dir / "stranger-ca")
            tallies += redis_probes(stack)
            passwords, tokens = full_flow(one, two)
        logs = scan_logs(stack.log_dir, secret_fragments(passwords, tokens, data_dir))
    rows = [to_row(tally, tried, amount) for tally, tried, amount in tallies]
    rows[0].notes = NOTES
    tried = (
        "passwords, tokens and their signatures, the JWT secret, the Redis passwords and the"
        " gRPC keys, after a full run"
    )
    rows.append(to_row(logs, tried, "every log file, at DEBUG"))
    command = command_line("bench.security_probe", ["--rounds", str(args.rounds)])
    path = save(Suite("security", command, rows))
    for row in rows:
        print(
            f"{row.tried[:90]:90} sent={row.sent:5} ok={row.succeeded:5} "
            f"other={row.failed_other:3} lost={row.lost}"
        )
        if row.failed_other or row.lost:
            print("    " + row.notes)
    print(f"{path.name}: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
