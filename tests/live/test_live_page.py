"""The ``/live`` page in real headless Chromium: two people, two gateways, one group session."""

from __future__ import annotations

import json

import pytest

from devstack.stack import LocalStack
from tests.support import REPO_ROOT
from tests.support import browser as cdp
from tests.support.browser import Page, script_hash
from tests.support.client import GatewayApi
from tests.support.stack import gateway_tier, make_replicas

chromium, browser = cdp.chromium, cdp.browser  # fixtures, shared with test_import_page.py
PAGE_FILE = REPO_ROOT / "gateway" / "live" / "page.html"
LIVE_ENV = {
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
    "FITNESS_LIVE_HEARTBEAT_SECONDS": "1",
    "FITNESS_MIN_WORKOUT_MINUTES": "0",  # a group workout here lasts seconds: let it count
}
# Each timeline entry as (seq, type, sender id, text): the same on every page.
TIMELINE = """[...document.querySelectorAll('#timeline li[data-seq]')].map(li =>
  [Number(li.dataset.seq), li.dataset.type, li.dataset.sender,
   li.querySelector('.text').textContent])"""


def test_it_pins_its_script_in_its_content_security_policy():
    expected = script_hash(PAGE_FILE.read_text())
    assert f"script-src {expected};" in PAGE_FILE.read_text(), (
        f"page.html's script changed: set script-src {expected} in its CSP <meta>"
    )


@pytest.fixture(scope="module")
def live_stack(chromium, tmp_path_factory):
    replicas = [*make_replicas(1), *gateway_tier(gateways=2)]
    stack = LocalStack(tmp_path_factory.mktemp("live-page"), replicas, extra_env=LIVE_ENV)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_it_runs_a_group_session_for_two_pages_on_two_gateways(live_stack, browser):
    gateway_1, gateway_2 = live_stack.replicas_of("gateway")
    alice, bob = GatewayApi(live_stack, 0).register(), register_with_goal(live_stack)
    a = log_in(browser.new_page(f"{gateway_1.url}/live"), alice)
    b = log_in(browser.new_page(f"{gateway_2.url}/live"), bob)

    create_and_join(a, b)
    a.wait_for(f"!!document.querySelector('#presence [data-user-id=\"{bob['user_id']}\"]')")
    chat(a, "Hi <b>Bob</b> & welcome")
    chat(b, "Ready!")
    post_exercise(b, name="Squat", sets="3", reps="10", weight="62.5", duration="90")
    vote_on_next_exercise(a, b, "Deadlift")

    timeline = same_timeline(a, b, "vote_closed")
    assert sorted((kind, text) for _, kind, _, text in timeline) == [
        ("chat_message", "Hi <b>Bob</b> & welcome"),
        ("chat_message", "Ready!"),
        ("exercise_update", "exercise: Squat, 3 \N{MULTIPLICATION SIGN} 10, 62.5 kg, 90 s"),
        ("participant_joined", "joined"),
        ("participant_joined", "joined"),
        ("vote_cast", "voted yes"),
        ("vote_cast", "voted yes"),
        ("vote_closed", "closed the vote on Deadlift: accepted (2 yes, 0 no)"),
        ("vote_opened", "proposed Deadlift as the next exercise"),
    ]
    # User text is shown as text, never run as markup.
    assert a.evaluate("document.querySelectorAll('#timeline b').length") == 0

    reconnect_after_gateway_restart(live_stack, gateway_2, a, b)

    a.click("end-session")
    a.click("end-session")  # the second click confirms
    assert same_timeline(a, b, "session_ended")[-1][2] == alice["user_id"]
    assert b.evaluate("document.getElementById('session-section').dataset.ended") == "true"
    b.wait_for("!!document.querySelector('#notices li')", timeout=20)
    assert b.text("notices").startswith("Goal achieved: workout count: 1")
    for page in (a, b):
        # Refused connections while B's gateway was down are expected; nothing else is.
        assert [p for p in page.problems() if "ERR_CONNECTION_REFUSED" not in p] == []


def register_with_goal(stack: LocalStack) -> dict:
    """Register a user whose goal (one workout) the group session will complete."""
    api = GatewayApi(stack, 1)
    user = api.register()
    token = api.login(user["email"])
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    answer = api.post(f"{api.user_url}/users/{user['user_id']}/goals", goal, token)
    assert answer.status_code == 201, answer.text
    return user


def log_in(page: Page, user: dict) -> Page:
    page.fill("login-email", user["email"])
    page.fill("login-password", user["password"])
    page.click("login-button")
    page.wait_for("document.getElementById('status').dataset.state === 'online'")
    return page


def create_and_join(a: Page, b: Page) -> str:
    """A creates a session; B joins it by its id; return the id."""
    a.fill("create-name", "Tuesday <legs>")
    a.click("create-button")
    session_id = a.wait_for("document.getElementById('session-section').dataset.sessionId")
    assert a.evaluate("document.getElementById('session-id').value") == session_id
    b.fill("join-id", "no-such-session")
    b.click("join-button")
    b.wait_for("document.getElementById('lobby-error').textContent.startsWith('No live session')")
    b.fill("join-id", session_id)
    b.click("join-button")
    b.wait_for(f"document.getElementById('session-section').dataset.sessionId === '{session_id}'")
    assert b.text("session-info") == "Tuesday <legs> · strength"
    return session_id


def chat(page: Page, message: str) -> None:
    page.fill("chat-message", message)
    page.click("chat-button")


def post_exercise(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        page.fill(f"exercise-{name}", value)
    page.click("exercise-button")


def vote_on_next_exercise(a: Page, b: Page, exercise: str) -> None:
    """A proposes, both vote yes, A closes the vote once both ballots are in."""
    a.fill("propose-exercise", exercise)
    a.click("propose-button")
    for page in (a, b):
        page.wait_for("!document.getElementById('vote-panel').hidden")
        page.click("vote-yes")
    a.wait_for("document.getElementById('vote-tally').textContent.startsWith('2 yes')")
    a.click("close-vote")


def reconnect_after_gateway_restart(stack: LocalStack, gateway, a: Page, b: Page) -> None:
    """B's gateway goes away; A chats meanwhile; B's page reconnects and catches up."""
    stack.kill(gateway.name)
    b.wait_for("document.getElementById('status').dataset.state === 'reconnecting'")
    chat(a, "While you were away")
    stack.start_replica(gateway)
    stack.wait_ready(gateway)
    b.wait_for("document.getElementById('status').dataset.state === 'online'", timeout=15)
    assert same_timeline(a, b, "chat_message")[-1][3] == "While you were away"


def same_timeline(a: Page, b: Page, last_type: str) -> list[list]:
    """Return the timeline both pages show once each has a ``last_type`` event last."""
    last = f"({TIMELINE}).at(-1)?.[1] === {json.dumps(last_type)}"
    seen = [page.wait_for(f"({last}) && {TIMELINE}") for page in (a, b)]
    assert seen[0] == seen[1]
    assert [entry[0] for entry in seen[0]] == list(range(1, len(seen[0]) + 1))
    return seen[0]
