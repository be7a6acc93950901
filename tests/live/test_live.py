"""Live group sessions over WebSocket, across two gateway instances, with state in Redis."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import pytest
import requests
import websocket

from devstack.stack import STATE_REDIS, LocalStack
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import activity_db, gateway_tier, make_replicas, running

LIVE_ENV = {
    "FITNESS_LIVE_LEAVE_GRACE_SECONDS": "1",
    "FITNESS_LIVE_HEARTBEAT_SECONDS": "0.5",
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
    # A group workout here lasts seconds: let it count (the minimum: test_logged_workouts.py).
    "FITNESS_MIN_WORKOUT_MINUTES": "0",
}


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory):
    replicas = [*make_replicas(1), *gateway_tier(gateways=2)]
    with running(tmp_path_factory.mktemp("live"), replicas, LIVE_ENV) as stack:
        yield stack


class LiveClient:
    """A test client of ``/ws`` that keeps every message it received."""

    def __init__(self, stack: LocalStack, gateway_index: int, token: str):
        # websocket-client: simple-websocket's Client leaves a message that arrives with the
        # handshake response unread until more data comes.
        url = stack.replicas_of("gateway")[gateway_index].url.replace("http", "ws")
        self.ws = websocket.create_connection(f"{url}/ws?token={token}", timeout=10)
        self.received: list[dict] = []
        self.log: list[dict] = []  # every numbered session event, in arrival order
        assert self.next("welcome")

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def send_raw(self, raw: str) -> None:
        self.ws.send(raw)

    def next(self, kind: str, timeout: float = 10.0, **match) -> dict:
        """Return the next message of type ``kind`` (with the given fields) not yet taken."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                    self.received.remove(message)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} {match} within {timeout}s; got {self.received}")
            self.received.append(self._receive(remaining))

    def events(self, upto_seq: int, timeout: float = 10.0) -> list[dict]:
        """Return the session events this client saw up to ``upto_seq``, in arrival order."""
        seen: list[dict] = []
        while not seen or seen[-1]["seq"] < upto_seq:
            seen.append(self.next_event(timeout))
        return seen

    def next_event(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if "seq" in message:
                    self.received.remove(message)
                    return message
            self.received.append(self._receive(max(0.01, deadline - time.monotonic())))

    def seen_until(self, seq: int, timeout: float = 10.0) -> list[tuple]:
        """Return (seq, type, sender) of every event received, once ``seq`` has arrived."""
        deadline = time.monotonic() + timeout
        while not self.log or self.log[-1]["seq"] < seq:
            self.received.append(self._receive(max(0.01, deadline - time.monotonic())))
        return [(e["seq"], e["type"], e["sender"]) for e in self.log]

    def _receive(self, timeout: float) -> dict:
        self.ws.settimeout(timeout)
        try:
            message = json.loads(self.ws.recv())
            if "seq" in message:
                self.log.append(message)
            return message
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"nothing received within {timeout:.1f}s") from None

    def close(self) -> None:
        self.ws.close()


@dataclass(frozen=True)
class Ids:
    a_id: str
    b_id: str
    a_token: str
    b_token: str
    session_id: str


def _pair(live_stack: LocalStack, b_gateway: int = 1) -> tuple[LiveClient, LiveClient, Ids]:
    """Two new users in a new session: A on gateway 0 created it, B (on ``b_gateway``) joined."""
    api = GatewayApi(live_stack)
    (a_id, a_token), (b_id, b_token) = api.new_user(), api.new_user()
    a, b = LiveClient(live_stack, 0, a_token), LiveClient(live_stack, b_gateway, b_token)
    return a, b, Ids(a_id, b_id, a_token, b_token, _session(a, (b, b_id)))


def _session(creator: LiveClient, *others: tuple[LiveClient, str]) -> str:
    creator.send(type="create_session", workout_type="hiit", name="lunch")
    session_id = creator.next("session_created")["session_id"]
    creator.next("joined")
    for client, user_id in others:
        client.send(type="join_session", session_id=session_id, user_id=user_id)
        client.next("joined")
    return session_id


def test_two_instances_show_one_session_in_one_order(live_stack):
    a, b, ids = _pair(live_stack)
    a.send(type="chat_message", user_id=ids.a_id, message="ready?")
    b.send(type="chat_message", user_id=ids.b_id, message="ready!")
    b.send(type="exercise_update", exercise="squat", sets=3, reps=12, weight_kg=60.0)
    a.send(type="propose_exercise", exercise="burpees")
    vote_id = a.next("vote_opened")["vote_id"]
    a.send(type="vote", vote_id=vote_id, choice="yes")
    b.send(type="vote", vote_id=vote_id, choice="yes")
    time.sleep(0.3)  # both ballots in before closing
    a.send(type="close_vote", vote_id=vote_id)
    closed = a.next("vote_closed")
    assert (closed["yes"], closed["no"], closed["result"]) == (2, 0, "accepted")
    a.send(type="presence")
    assert sorted(a.next("presence")["participants"]) == sorted([ids.a_id, ids.b_id])

    last = closed["seq"]
    seen_by_a, seen_by_b = a.seen_until(last), b.seen_until(last)
    # B joined after A's own join (seq 1), and its join replayed it: both saw 1..last.
    assert [seq for seq, _, _ in seen_by_b] == list(range(1, last + 1))
    assert seen_by_a == seen_by_b
    assert ("chat_message", ids.b_id) in [(t, s) for _, t, s in seen_by_a]
    a.close()
    b.close()


def test_each_gateway_reports_its_sockets_and_fan_out_times(live_stack):
    a, b, ids = _pair(live_stack)
    a.send(type="chat_message", user_id=ids.a_id, message="timed")
    b.next("chat_message", message="timed")
    for gateway in live_stack.replicas_of("gateway"):
        live = requests.get(f"{gateway.url}/status", timeout=5).json()["live"]
        assert live["connections"] >= 1 and live["sessions"] >= 1
        fanout = live["fanout"]
        assert fanout["events"] >= 1 and fanout["sockets_max"] >= 1
        assert 0 <= fanout["p50_ms"] <= fanout["p99_ms"] <= fanout["max_ms"] < 1000
        assert fanout["max_ms"] > 0  # a socket write was timed (microseconds, not nothing)
    a.close()
    b.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "malformed_json"),
        ("[1, 2]", "malformed_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"message": "no type"}', "unknown_type"),
        ('{"type": "chat_message"}', "invalid_message"),
        ('{"type": "chat_message", "message": ""}', "invalid_message"),
        ('{"type": "chat_message", "message": "hi", "mood": "great"}', "invalid_message"),
        ('{"type": "exercise_update", "exercise": "squat", "reps": -3}', "invalid_message"),
        (
            '{"type": "exercise_update", "exercise": "squat", "weight_kg": "heavy"}',
            "invalid_message",
        ),
        ('{"type": "join_session", "session_id": "no-such-session"}', "session_not_found"),
        ('{"type": "chat_message", "message": "hi", "session_id": "elsewhere"}', "not_joined"),
        ('{"type": "chat_message", "message": "hi", "user_id": "someone-else"}', "forbidden"),
        ('{"type": "vote", "vote_id": "nope", "choice": "yes"}', "no_such_vote"),
        ('{"type": "vote", "vote_id": "nope", "choice": "maybe"}', "invalid_message"),
        ('{"type": "close_vote", "vote_id": "nope"}', "no_such_vote"),
        ('{"type": "chat_message", "message": "' + "x" * 5000 + '"}', "message_too_large"),
        # 1,139 characters, 4,439 bytes: the limit counts bytes
        ('{"type": "chat_message", "message": "' + "\U0001f4aa" * 1100 + '"}', "message_too_large"),
    ],
)
def test_it_answers_bad_input_with_an_error_and_goes_on(live_stack, raw, code):
    a, b, ids = _pair(live_stack)
    b.send_raw(raw)
    error = b.next("error")
    assert error["code"] == code, error
    assert error["message"]
    b.send(type="chat_message", message="still here", request_id="after")
    assert a.next("chat_message", message="still here")["session_id"] == ids.session_id
    a.close()
    b.close()


def test_it_limits_floods_and_refuses_strangers(live_stack):
    a, b, _ = _pair(live_stack, b_gateway=0)
    b.send(type="end_session")
    assert b.next("error")["code"] == "forbidden"
    for n in range(60):
        b.send(type="chat_message", message=f"spam {n}")
    assert b.next("error", code="rate_limited")
    time.sleep(1.1)
    b.send(type="chat_message", message="calm again")
    assert a.next("chat_message", message="calm again")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        LiveClient(live_stack, 0, "not-a-token")
    assert refused.value.status_code == 401
    a.close()
    b.close()


def test_events_published_while_the_fan_out_resubscribes_still_arrive(live_stack):
    a, b, _ = _pair(live_stack)
    state = live_stack.redis_client(live_stack.replicas_of(STATE_REDIS)[0], socket_timeout=5)
    # Cut every gateway worker's subscription, as a Redis failover does; they come back ~1 s
    # later, and what was published meanwhile reached no subscriber.
    assert state.client_kill_filter(_type="pubsub") >= 2
    sent = [f"while away {n}" for n in range(3)]
    for text in sent:
        b.send(type="chat_message", message=text)
    for client in (a, b):
        assert [client.next("chat_message", timeout=15)["message"] for _ in sent] == sent
        seqs = [event["seq"] for event in client.log]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a repeat"
    a.close()
    b.close()


def test_connected_participants_stay_present_beyond_the_presence_window(live_stack):
    a, b, _ = _pair(live_stack)
    # Presence lasts 3 heartbeats (1.5 s here); only the gateways' heartbeats keep both listed.
    time.sleep(3 * 3 * float(LIVE_ENV["FITNESS_LIVE_HEARTBEAT_SECONDS"]))
    a.send(type="presence")
    assert len(a.next("presence")["participants"]) == 2
    a.close()
    b.close()


def test_a_lost_connection_counts_as_leaving_after_the_grace_period(live_stack):
    a, b, ids = _pair(live_stack)
    b.ws.sock.close()  # no close frame, no leave_session: the socket just dies
    left = a.next("participant_left", timeout=15, sender=ids.b_id)
    assert left["reason"] == "disconnected"
    a.send(type="presence")
    assert a.next("presence")["participants"] == [ids.a_id]
    a.close()


def test_the_ended_session_is_saved_and_counts_for_every_participant(live_stack):
    one, two = GatewayApi(live_stack, 0), GatewayApi(live_stack, 1)
    (a_id, a_token), (b_id, b_token) = one.new_user(), two.new_user()
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    assert two.post(f"{two.user_url}/users/{b_id}/goals", goal, b_token).status_code == 201
    a = LiveClient(live_stack, 0, a_token)
    b, b_elsewhere = LiveClient(live_stack, 1, b_token), LiveClient(live_stack, 0, b_token)
    session_id = _session(a, (b, b_id))
    b.send(type="chat_message", message="last set")
    assert a.next("chat_message")["message"] == "last set"  # in the session before it ends
    a.send(type="end_session")
    assert b.next("session_ended")
    # The goal is reached by the group workout: both of B's connections hear it.
    for connection in (b, b_elsewhere):
        achieved = connection.next("goal_achieved", timeout=20)
        assert achieved["goal"]["user_id"] == b_id and achieved["goal"]["achieved"] is True

    def counted(api: GatewayApi, user_id: str, token: str) -> bool:
        stats = api.get(f"{api.user_url}/users/{user_id}/statistics", token)
        return stats.json()["total_workouts"] == 1

    # (This once caught a lost count: a participant's first statistics read built their totals
    # while their workout was being added; see test_activity_store.py.)
    for api, user_id, token in ((one, a_id, a_token), (two, b_id, b_token)):
        check = functools.partial(counted, api, user_id, token)
        assert wait_until(check, 20), _stats(api, user_id, token)
    saved = _group_session(live_stack, session_id)
    assert sorted(p["user_id"] for p in saved["participants"]) == sorted([a_id, b_id])
    assert [c["message"] for c in saved["chat"]] == ["last set"]
    assert saved["workout_type"] == "hiit"
    for client in (a, b, b_elsewhere):
        client.close()


def _stats(api: GatewayApi, user_id: str, token: str) -> str:
    return api.get(f"{api.user_url}/users/{user_id}/statistics", token).text


def _group_session(stack, session_id: str) -> dict:
    found = activity_db(stack)["group_sessions"].find_one({"_id": session_id})
    assert found is not None
    return found


def test_clients_of_a_killed_instance_reconnect_to_the_other_and_catch_up(live_stack):
    a, b, ids = _pair(live_stack)
    a.send(type="chat_message", message="before")
    last_seen = a.next("chat_message", message="before")["seq"]
    victim = live_stack.replicas_of("gateway")[0]
    live_stack.kill(victim.name)
    try:
        for n in range(3):
            b.send(type="chat_message", message=f"missed {n}")
        last = b.next("chat_message", message="missed 2")["seq"]
        again = LiveClient(live_stack, 1, ids.a_token)
        again.send(type="join_session", session_id=ids.session_id, last_seq=last_seen)
        again.next("joined")
        caught_up = again.events(last)
        assert [e["seq"] for e in caught_up] == list(range(last_seen + 1, last + 1))
        assert [e["message"] for e in caught_up if e["type"] == "chat_message"] == [
            "missed 0",
            "missed 1",
            "missed 2",
        ]
        again.close()
        b.close()
    finally:
        live_stack.start_replica(victim)
        live_stack.wait_ready(victim)


def test_a_client_away_when_the_session_ended_still_catches_up(live_stack):
    a, b, ids = _pair(live_stack)
    b.send(type="chat_message", message="see you")
    last_seen = b.next("chat_message", message="see you")["seq"]
    b.close()
    a.send(type="chat_message", message="bye")
    a.send(type="end_session")
    ended = a.next("session_ended")["seq"]
    back = LiveClient(live_stack, 1, ids.b_token)
    back.send(type="join_session", session_id=ids.session_id, last_seq=last_seen)
    assert back.next("joined")["status"] == "ended"
    assert [kind for _, kind, _ in back.seen_until(ended)][-2:] == ["chat_message", "session_ended"]
    back.send(type="chat_message", session_id=ids.session_id, message="anyone?")
    assert back.next("error")["code"] == "not_joined"
    a.close()
    back.close()
