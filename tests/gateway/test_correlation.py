"""One correlation id follows a request from HTTP into gRPC and shows in both services' logs."""

from __future__ import annotations

import json
import time
import uuid


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _with_trace(stack, service: str, trace_id: str) -> list[dict]:
    found = []
    for replica in stack.replicas:
        if replica.service == service:
            events = _events(stack.log_path(replica.name))
            found += [e for e in events if e.get("trace", {}).get("id") == trace_id]
    return found


def test_it_carries_one_correlation_id_across_services(stack, api):
    user_id, token = api.new_user()
    session = api.start(user_id, token)
    trace_id = "test-" + uuid.uuid4().hex

    response = api.http.post(
        f"{api.activity_url}/workouts/{session['session_id']}/end",
        json={},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": trace_id},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == trace_id
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        activity = _with_trace(stack, "activity_service", trace_id)
        users = _with_trace(stack, "user_service", trace_id)
        if activity and users:
            break
        time.sleep(0.1)
    assert any(e.get("url", {}).get("path", "").endswith("/end") for e in activity)
    assert any(e.get("rpc", {}).get("method", "").endswith("RecordWorkout") for e in users)
    for event in activity + users:
        assert event["service"]["name"] in {"activity_service", "user_service"}
        assert "@timestamp" in event and "log.level" in event


def test_it_makes_a_correlation_id_when_the_client_sends_none(api):
    response = api.get(f"{api.user_url}/status")
    assert len(response.headers["X-Request-ID"]) == 32
