"""Property-based fuzzing of the public API with schemathesis, shared by test and bench.

``fuzz_stack`` starts a private stack (two replicas of each service, the state Redis, two
gateways); ``seed`` registers a user and gives it a goal, a saga and an ended workout, so that
the hooks in ``fuzz_hooks.py`` can aim path parameters at real records. ``run`` drives the
schemathesis CLI (v4) against the first gateway's ``/openapi.json``, with the user's token or
without any, and reads the per-request outcomes from its NDJSON report:

- checks: no 5xx, status codes documented, bodies and content types as the spec says;
- outcome counts by status class, and whether every 4xx carried a JSON ``error`` body.

``tests/support/fuzz_records.py`` then checks every stored record against the domain rules.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.stack import LocalStack
from tests.support import fuzz_records
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import gateway_tier, make_replicas, running

TESTS_DIR = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,negative_data_rejection"
)
# Values captured from responses would mostly be other users' ids (every registration makes
# one), so every request would stop at 403; the hooks aim at the fuzzing user's instead.
CONFIG = """
[phases.coverage]
extra-data-sources = { responses = false }
[phases.fuzzing]
extra-data-sources = { responses = false }
"""
# Generous limits: the fuzzer must hit validation, not the login limiter.
FUZZ_ENV = {
    "FITNESS_LOG_LEVEL": "WARNING",
    "FITNESS_LOGIN_FAILURES_PER_ACCOUNT": "100000 per 15 minutes",
    "FITNESS_LOGIN_FAILURES_PER_ADDRESS": "100000 per 15 minutes",
}


@dataclass
class Target:
    """The fuzzing user and the ids of records it owns."""

    user_id: str
    token: str
    goal_ids: list[str]
    session_ids: list[str]
    saga_ids: list[str]

    def env(self) -> dict[str, str]:
        return {
            "FUZZ_USER_ID": self.user_id,
            "FUZZ_GOAL_ID": ",".join(self.goal_ids),
            "FUZZ_SESSION_ID": ",".join(self.session_ids),
            "FUZZ_SAGA_ID": ",".join(self.saga_ids),
        }


@dataclass
class Outcome:
    """What one schemathesis run sent and saw."""

    command: list[str]
    exit_code: int
    output: str
    operations: int = 0
    generated: int = 0  # test cases schemathesis reports having generated
    statuses: Counter = field(default_factory=Counter)
    seed: str = ""
    clear_errors: int = 0  # 4xx answers with a JSON body holding an "error"
    unclear_errors: list[str] = field(default_factory=list)  # 4xx without one
    failures: list[str] = field(default_factory=list)  # 5xx, or a check failed

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def succeeded(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def failed_other(self) -> int:
        return len(self.failures) + len(self.unclear_errors)

    def problems(self) -> list[str]:
        """Every response that breaks a rule, and a failed run of the CLI itself."""
        found = [*self.failures, *self.unclear_errors]
        if self.exit_code != 0 and not found:
            first = self.output.find("Traceback")
            found.append(f"schemathesis exited {self.exit_code}:\n{self.output[first:][:6000]}")
        return found


@contextlib.contextmanager
def fuzz_stack(data_dir: Path) -> Iterator[LocalStack]:
    """Run two replicas per service and two gateways for the ``with`` block."""
    replicas = [*make_replicas(2), *gateway_tier(gateways=2)]
    with running(data_dir, replicas, FUZZ_ENV) as stack:
        yield stack


def seed(stack: LocalStack) -> Target:
    """Register the fuzzing user; give it a goal (made by a saga) and an ended workout."""
    api = GatewayApi(stack)
    user_id, token = api.new_user(weight_kg=70.0)
    goal = api.post(
        f"{api.user_url}/users/{user_id}/goals",
        {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"},
        token,
    )
    assert goal.status_code in (201, 202), goal.text
    saga_id = goal.headers["X-Saga-ID"]
    assert wait_until(lambda: _saga_settled(api, saga_id, token))
    goal_id = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"][0]["goal_id"]
    workout = api.start(user_id, token)["session_id"]
    api.end(workout, token)
    return Target(user_id, token, [goal_id], [workout], [saga_id])


def _saga_settled(api: GatewayApi, saga_id: str, token: str) -> bool:
    answer = api.get(f"{api.user_url}/sagas/{saga_id}", token)
    return answer.status_code == 200 and answer.json()["state"] == "completed"


@dataclass
class Campaign:
    """Both runs against one stack, and what the stores held afterwards."""

    runs: dict[str, Outcome]  # "user" (with a token), "anonymous" (without)
    invalid: list[str]  # stored records that break a domain rule
    records: dict[str, int]


def campaign(
    data_dir: Path, max_examples: int, anonymous_examples: int, seed_value: int | None = None
) -> Campaign:
    """Start a stack, fuzz it as a user and anonymously, then check every stored record."""
    with fuzz_stack(data_dir / "stack") as stack:
        return campaign_on(stack, data_dir, max_examples, anonymous_examples, seed_value)


def campaign_on(
    stack: LocalStack,
    data_dir: Path,
    max_examples: int,
    anonymous_examples: int,
    seed_value: int | None = None,
) -> Campaign:
    """Fuzz a running ``stack`` as a fresh user and anonymously; check every stored record."""
    target = seed(stack)
    runs = {}
    for name, who, examples in (
        ("user", target, max_examples),
        ("anonymous", None, anonymous_examples),
    ):
        report_dir = data_dir / f"report-{name}"
        report_dir.mkdir(parents=True, exist_ok=True)
        runs[name] = run(stack, who, report_dir, examples, seed_value=seed_value)
    return Campaign(
        runs,
        fuzz_records.invalid_records(stack.data_dir, stack.mongo_url),
        fuzz_records.count_records(stack.data_dir, stack.mongo_url),
    )


def run(
    stack: LocalStack,
    target: Target | None,
    report_dir: Path,
    max_examples: int,
    phases: str = "examples,coverage,fuzzing,stateful",
    seed_value: int | None = None,
    timeout: float = 1800,
) -> Outcome:
    """Fuzz every operation through the first gateway, as ``target``'s user (or anonymously)."""
    base = stack.replicas_of("gateway")[0].url
    ndjson = report_dir / "events.ndjson"
    spec = report_dir / "openapi.json"
    spec.write_text(json.dumps(aimed_spec(base, target)))
    config = report_dir / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(SCHEMATHESIS),
        f"--config-file={config}",
        "run",
        str(spec),
        f"--url={base}",
        f"--checks={CHECKS}",
        f"--max-examples={max_examples}",
        f"--phases={phases}",
        "--workers=4",
        "--request-timeout=30",
        "--continue-on-failure",
        "--suppress-health-check=all",
        "--report=ndjson",
        f"--report-ndjson-path={ndjson}",
        "--output-truncate=false",
        "--output-sanitize=false",
        "--warnings=off",
    ]
    if seed_value is not None:
        command.append(f"--seed={seed_value}")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(TESTS_DIR / "fuzz_hooks.py")}
    if target is not None:
        command.append(f"--header=Authorization: Bearer {target.token}")
        env.update(target.env())
    done = subprocess.run(
        command,
        env=env,
        cwd=report_dir,  # it keeps a cache in .schemathesis/ under the working directory
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    outcome = Outcome(command, done.returncode, done.stdout + done.stderr)
    (report_dir / "output.txt").write_text(outcome.output)
    _read_summary(outcome)
    _read_events(outcome, ndjson)
    return outcome


def aimed_spec(base: str, target: Target | None) -> dict:
    """The gateway's served spec, its example ids replaced by the target's own.

    Schemathesis' examples and coverage phases send the spec's examples as they are, without
    the hooks: with the documentation's example ids they would all stop at 403/404.
    """
    spec = requests.get(f"{base}/openapi.json", timeout=10).json()
    if target is None:
        return spec
    parameters = spec["components"]["parameters"]
    text = json.dumps(spec)
    for name, value in (
        ("UserId", target.user_id),
        ("GoalId", target.goal_ids[0]),
        ("SessionId", target.session_ids[0]),
        ("SagaId", target.saga_ids[0]),
    ):
        text = text.replace(parameters[name]["example"], value)
    return json.loads(text)


def _read_summary(outcome: Outcome) -> None:
    """Take the operation and test-case counts from the CLI's summary lines."""
    if found := re.search(r"Operations:\s+(\d+) selected", outcome.output):
        outcome.operations = int(found.group(1))
    if found := re.search(r"Test cases:\s+(\d+) generated", outcome.output):
        outcome.generated = int(found.group(1))
    if found := re.search(r"Seed: (\d+)", outcome.output):
        outcome.seed = found.group(1)


def _read_events(outcome: Outcome, path: Path) -> None:
    """Count every response the run got, and keep every failed check."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        event = json.loads(line)
        for kind, body in event.items():
            if kind == "ScenarioFinished":
                _read_scenario(outcome, body)


def _read_scenario(outcome: Outcome, scenario: dict) -> None:
    """Judge each request of a scenario once: 2xx, clear 4xx, or anything else."""
    recorder = scenario.get("recorder") or {}
    checks = recorder.get("checks") or {}
    for case_id, interaction in (recorder.get("interactions") or {}).items():
        response = interaction.get("response")
        if response is None:
            continue
        status = response["status_code"]
        outcome.statuses[status] += 1
        failed = [c for c in checks.get(case_id, []) if str(c.get("status")).lower() == "failure"]
        if failed or status >= 500:
            outcome.failures.append(_describe(interaction, failed))
        elif 400 <= status < 500:
            _judge_error(outcome, interaction)


def _judge_error(outcome: Outcome, interaction: dict) -> None:
    """Count a 4xx as clear only if it carries a JSON body with an ``error`` member."""
    try:
        body = json.loads(_body_text(interaction["response"]))
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        outcome.clear_errors += 1
    else:
        outcome.unclear_errors.append(_describe(interaction, []))


def _describe(interaction: dict, failed: list[dict]) -> str:
    request, response = interaction.get("request") or {}, interaction["response"]
    reasons = "; ".join(
        f"{c['name']}: {json.dumps(c.get('failure_info') or c.get('failure'))[:400]}"
        for c in failed
    )
    return (
        f"{request.get('method')} {request.get('uri')} -> {response['status_code']} "
        f"{_body_text(response)[:200]!r} {reasons}"
    )


def _body_text(response: dict) -> str:
    content = response.get("content")
    if isinstance(content, dict) and "$base64" in content:
        return base64.b64decode(content["$base64"]).decode("utf-8", "replace")
    return content if isinstance(content, str) else ""
