"""No password, token (or its signature) or token secret in any log of a full run.

Nor the stack's own secrets (each Redis role's password, the gRPC certificates' private keys),
there or in the table ``make up`` prints. Two gateways and two replicas of each service, each
writing its log file, plus the Redis servers' logs; the flow covers logins (right and wrong),
workouts, goal sagas, live sessions opened with ``/ws?token=…`` and requests with a rejected
Authorization header.
"""

from __future__ import annotations

from devstack.__main__ import _print_summary
from tests.support.hostile import STACK_ENV, Target, full_flow, scan_logs, secret_fragments
from tests.support.stack import gateway_tier, make_replicas, running


def test_it_writes_no_secret_to_any_log(tmp_path, capsys):
    replicas = make_replicas(2) + gateway_tier(2, 1)
    # DEBUG: what libraries log at their most verbose must be clean too.
    env = {**STACK_ENV, "FITNESS_LOG_LEVEL": "DEBUG"}
    with running(tmp_path, replicas, env) as stack:
        one, two = (Target(g.url, tmp_path, stack.mongo_url) for g in stack.replicas_of("gateway"))
        passwords, tokens = full_flow(one, two)
        _print_summary(stack)  # the `make up` table
    table = capsys.readouterr().out
    (tmp_path / "logs" / "make-up-table.txt").write_text(table)
    # Stopped: every process has flushed its log.
    secrets = secret_fragments(passwords, tokens, tmp_path)
    assert {"Redis password state-user_service", "TLS key gateway"} <= set(secrets)
    tally = scan_logs(stack.log_dir, secrets)
    logs = {path.name for path in stack.log_dir.iterdir()}
    assert {"gateway-1.log", "gateway-2.log", "user_service-2.log", "state-redis.log"} <= logs
    assert tally.lost == 0, "\n".join(tally.problems)
    # The scan does see what the logs hold: the requests of the flow, and at DEBUG level.
    seen = {"a login": "POST /users/login 200", "debug": '"log.level":"debug"'}
    found = scan_logs(stack.log_dir, seen).problems
    assert {problem.split(" in ")[0] for problem in found} == {"LOST: a login", "LOST: debug"}
    assert tally.sent == len(logs) * len(secrets)
