"""No password, token (or its signature) or token secret in any log of a full run.

Two gateways and two replicas of each service, each writing its log file, plus the Redis
servers' logs; the flow covers logins (right and wrong), workouts, goal sagas, live sessions
opened with ``/ws?token=…`` and requests with a rejected Authorization header.
"""

from __future__ import annotations

from conftest import gateway_tier, make_replicas, running
from hostile import STACK_ENV, Target, full_flow, scan_logs, secret_fragments


def test_it_writes_no_secret_to_any_log(tmp_path):
    replicas = make_replicas(2) + gateway_tier(2, 1)
    # DEBUG: what libraries log at their most verbose must be clean too.
    env = {**STACK_ENV, "FITNESS_LOG_LEVEL": "DEBUG"}
    with running(tmp_path, replicas, env) as stack:
        one, two = (Target(g.url, tmp_path, stack.mongo_url) for g in stack.replicas_of("gateway"))
        passwords, tokens = full_flow(one, two)
    # Stopped: every process has flushed its log.
    tally = scan_logs(stack.log_dir, secret_fragments(passwords, tokens))
    logs = {path.name for path in stack.log_dir.iterdir()}
    assert {"gateway-1.log", "gateway-2.log", "user_service-2.log", "state-redis.log"} <= logs
    assert tally.lost == 0, "\n".join(tally.problems)
    # The scan does see what the logs hold: the requests of the flow, and at DEBUG level.
    seen = {"a login": "POST /users/login 200", "debug": '"log.level":"debug"'}
    found = scan_logs(stack.log_dir, seen).problems
    assert {problem.split(" in ")[0] for problem in found} == {"LOST: a login", "LOST: debug"}
    assert tally.sent == len(logs) * (1 + len(passwords) + 2 * len(tokens))
