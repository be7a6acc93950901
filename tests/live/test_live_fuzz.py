"""WebSocket fuzzing of /ws: malformed frames, random JSON and floods get error events or a
proper close, the gateway and its workers stay up, and a healthy session on both gateways
keeps getting every event in order (a quick run; ``bench/ws_fuzz.py`` is the long one)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support import fuzz_ws, fuzz_ws_messages, fuzz_ws_session
from tests.support.client import GatewayApi

SEED = 20261128


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with fuzz_ws.live_fuzz_stack(tmp_path_factory.mktemp("live-fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def fuzz_url(stack):
    _, token = GatewayApi(stack).new_user()
    return fuzz_ws.ws_url(stack, 0, token)


@pytest.fixture(scope="module")
def healthy(stack):
    """The session that must not notice the fuzzing, with the workers' pids before it."""
    session = fuzz_ws_session.HealthySession(stack)
    workers = fuzz_ws.gateway_workers(stack)
    session.start()
    return session, workers


@pytest.mark.parametrize("case", fuzz_ws.FRAME_CASES, ids=lambda case: case.name)
def test_a_malformed_frame_gets_an_error_or_a_proper_close(healthy, fuzz_url, case):
    answer = fuzz_ws.send_frame_case(fuzz_url, case)
    assert fuzz_ws.judge_frame(case, answer), f"expected {case.expect}; {answer.describe()}"


def test_random_messages_get_replies_or_errors(healthy, fuzz_url):
    tally = fuzz_ws_messages.fuzz_messages(fuzz_url, examples=150, seed=SEED)
    print(f"random messages: {tally}")
    assert tally.problems == []
    assert tally.failed_clear > 0 and tally.sent == 150


def test_floods_are_limited_and_answered(healthy, fuzz_url):
    messages = fuzz_ws.flood_messages(fuzz_url, 500)
    pings = fuzz_ws.flood_pings(fuzz_url, 2000)
    connections = fuzz_ws.flood_connections(fuzz_url, 50)
    assert messages.failed_clear > 0, messages  # the rate limiter answered
    assert [*messages.problems, *pings.problems, *connections.problems] == []


def test_deeply_nested_json_gets_an_error_event(healthy, fuzz_url):
    ws = fuzz_ws.connect(fuzz_url)
    ws.send("[" * 2000 + "]" * 2000)
    answer = fuzz_ws.read_answer(ws, 10, lambda event: True)
    ws.close()
    assert [e.get("code") for e in answer.events] == ["malformed_json"], answer.describe()


def test_an_oversized_message_gets_1009(healthy, fuzz_url):
    case = fuzz_ws.FrameCase(
        "1 MiB text frame", lambda: fuzz_ws.frame(fuzz_ws.TEXT, b"x" * 2**20), "close"
    )
    # Ten tries: without a graceful close the reset races the close frame and can win.
    answers = [fuzz_ws.send_frame_case(fuzz_url, case) for _ in range(10)]
    assert [(a.ended, a.close_code) for a in answers] == [("close", 1009)] * 10


def test_afterwards_the_gateways_are_up_and_the_healthy_session_saw_everything(stack, healthy):
    """Runs last in this module: the fuzzing above happened during the healthy session."""
    session, workers_before = healthy
    problems = session.stop()
    print(f"healthy session: {session.sent} messages sent, {session.received()} received")
    assert session.sent > 0
    assert problems == []
    for gateway in stack.replicas_of("gateway"):
        assert requests.get(f"{gateway.url}/status", timeout=10).status_code == 200
    assert fuzz_ws.gateway_workers(stack) == workers_before
    errors = fuzz_ws.gateway_errors(stack)
    assert errors == [], json.dumps(errors, indent=1)
