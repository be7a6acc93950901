"""Fuzz the whole public API from the gateway's /openapi.json with schemathesis (the long run).

Starts a private stack (two replicas of each service, the state Redis, two gateways; embedded
stores in a temporary directory, free ports), registers a user with a goal and a workout, then
runs the schemathesis CLI twice against the first gateway: as that user (path ids aimed at its
own records, see ``tests/support/fuzz_hooks.py``) and without a token. Checks on every response: no
5xx, status code documented, body and headers as the spec says, content type as documented;
every 4xx must carry a JSON ``error`` body. Afterwards every stored record (users and goals in
SQLite, workouts, goal copies and group sessions in the embedded MongoDB) is checked against
the domain rules: "lost" counts records that break one. Saves the rows as the ``fuzz`` suite.

    .venv/bin/python -m bench.api_fuzz                    # >= 10,000 requests, ~8-10 min
    .venv/bin/python -m bench.api_fuzz --examples 50      # a short run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.harness.results import Row, Suite, command_line, save
from tests.support import fuzz_api

MIN_REQUESTS = 10_000


def rows(campaign: fuzz_api.Campaign) -> list[Row]:
    """One results row per run: the user's and the anonymous one."""
    made = []
    for name, tried in (
        ("user", "schemathesis with a registered user's token, path ids aimed at its records"),
        ("anonymous", "schemathesis without a token"),
    ):
        outcome = campaign.runs[name]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(outcome.statuses.items()))
        made.append(
            Row(
                area="fuzz",
                tried=tried,
                amount=f"{outcome.operations} operations, {outcome.generated} generated requests",
                sent=outcome.sent,
                succeeded=outcome.succeeded,
                failed_clear=outcome.clear_errors,
                failed_other=outcome.failed_other,
                lost=len(campaign.invalid),
                notes=f"seed {outcome.seed}; statuses {statuses}",
            )
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=650, help="max examples per operation")
    parser.add_argument("--anonymous-examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="api-fuzz-") as tmp:
        campaign = fuzz_api.campaign(
            Path(tmp), args.examples, args.anonymous_examples, seed_value=args.seed
        )
    for name, outcome in campaign.runs.items():
        print(
            f"== {name}: {outcome.operations} operations, {outcome.generated} generated "
            f"requests (as schemathesis reports), {outcome.sent} responses, seed {outcome.seed}"
        )
        print(f"   statuses: {dict(sorted(outcome.statuses.items()))}")
        for problem in outcome.problems():
            print(f"   PROBLEM: {problem}")
    print(f"records after fuzzing: {campaign.records}")
    for record in campaign.invalid:
        print(f"   INVALID RECORD: {record}")
    total = sum(outcome.generated for outcome in campaign.runs.values())
    if total < MIN_REQUESTS:
        print(f"note: {total} generated requests, fewer than {MIN_REQUESTS}; raise --examples")
    save(Suite("fuzz", command_line("bench.api_fuzz", sys.argv[1:]), rows(campaign)))


if __name__ == "__main__":
    main()
