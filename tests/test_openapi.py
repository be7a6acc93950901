"""The OpenAPI document, its Postman collection and the docs page: valid, current and true."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import jsonschema
import pytest
from conftest import Api
from flask import Flask
from openapi_spec_validator import validate

import activity_service.routes
import user_service.routes
from gateway import create_app, docs
from gateway.openapi import POSTMAN_PATH, SPEC_PATH, build_spec, to_json
from gateway.openapi.postman import build_collection
from gateway.openapi.schemas import BODY_MODELS
from gateway.routes import ROUTES, route_for

SPEC = json.loads(SPEC_PATH.read_text())
OPERATIONS = [
    (path, method, op) for path, item in SPEC["paths"].items() for method, op in item.items()
]
GATEWAY_OWN_PATHS = {"/status", "/status/ready", "/openapi.json", "/docs"}
SAMPLE_IDS = {"user_id": "u-1", "goal_id": "g-1", "session_id": "s-1"}
REGENERATE = "stale: run `python -m gateway.openapi` and commit the result"


def concrete(path: str) -> str:
    """Return ``path`` with sample values in place of its parameters."""
    return re.sub(r"{(\w+)}", lambda m: SAMPLE_IDS[m[1]], path)


def resolve(node: dict) -> dict:
    return docs.resolve(SPEC, node)


def documented(path: str, method: str, status: int) -> dict:
    """Return the documented answer of an operation with ``status``, or fail."""
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered an undocumented {status}"
    return resolve(responses[str(status)])


def check_body(answer: dict, body, media_type: str = "application/json") -> None:
    """Validate ``body`` against the answer's schema (references into the document resolve)."""
    schema = {**answer["content"][media_type]["schema"], "components": SPEC["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.fixture
def gateway_client(tmp_path):
    app = create_app({"HTTP_PORT": 0, "DATA_DIR": str(tmp_path), "JWT_SECRET": "test-secret"})
    return app.test_client()


def test_it_is_a_valid_openapi_document():
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_it_is_what_the_generator_writes():
    assert SPEC_PATH.read_text() == to_json(build_spec()), REGENERATE


def test_the_postman_collection_is_what_the_generator_writes():
    assert POSTMAN_PATH.read_text() == to_json(build_collection(build_spec())), REGENERATE


def test_the_postman_collection_has_a_folder_per_tag_and_a_request_per_operation():
    collection = json.loads(POSTMAN_PATH.read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert [folder["name"] for folder in collection["item"]] == [t["name"] for t in SPEC["tags"]]
    requests = {
        (item["request"]["method"], item["request"]["url"]["raw"].split("?")[0]): item
        for folder in collection["item"]
        for item in folder["item"]
    }
    expected = {
        (method.upper(), "{{baseUrl}}" + re.sub(r"{(\w+)}", _postman_var, path))
        for path, method, _ in OPERATIONS
    }
    assert set(requests) == expected
    login = requests[("POST", "{{baseUrl}}/users/login")]
    assert login["request"]["auth"] == {"type": "noauth"}
    assert json.loads(login["request"]["body"]["raw"])["email"]
    script = login["event"][0]["script"]["exec"]
    assert '    pm.collectionVariables.set("token", body.token);' in script
    assert collection["auth"]["bearer"][0]["value"] == "{{token}}"
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["baseUrl"] == "http://127.0.0.1:8080"
    assert {"token", "userId", "goalId", "sessionId"} <= set(variables)


def _postman_var(match: re.Match) -> str:
    head, *rest = match[1].split("_")
    return "{{" + head + "".join(word.title() for word in rest) + "}}"


def test_every_operation_is_routed_by_the_gateway(gateway_client):
    routes = gateway_client.application.url_map.bind("localhost")
    for path, method, _ in OPERATIONS:
        routes.match(concrete(path), method=method.upper())  # raises NotFound/MethodNotAllowed
        if path not in GATEWAY_OWN_PATHS:
            _, path_user = route_for(concrete(path))
            expected_user = SAMPLE_IDS["user_id"] if "{user_id}" in path else None
            assert path_user == expected_user, f"the edge would not check the user of {path}"


def test_every_gateway_route_is_documented():
    paths = [concrete(path) for path in SPEC["paths"]]
    for pattern, service in ROUTES:
        assert any(pattern.match(path) for path in paths), f"{pattern.pattern} ({service})"


@pytest.mark.parametrize(
    ("service", "blueprint"),
    [("user_service", user_service.routes.bp), ("activity_service", activity_service.routes.bp)],
)
def test_it_documents_exactly_the_operations_a_service_serves(service, blueprint):
    app = Flask(service)
    app.register_blueprint(blueprint)
    served = {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented_here = {
        (method, path)
        for path, method, _ in OPERATIONS
        if path not in GATEWAY_OWN_PATHS and route_for(concrete(path))[0] == service
    }
    assert documented_here == served


def test_request_examples_are_accepted_by_the_services_models():
    bodies = [op["requestBody"] for _, _, op in OPERATIONS if "requestBody" in op]
    assert len(bodies) == len(BODY_MODELS)
    for body in bodies:
        media = body["content"]["application/json"]
        BODY_MODELS[media["schema"]["$ref"].rsplit("/", 1)[-1]].model_validate(media["example"])


def test_every_documented_example_matches_its_schema():
    answers = [resolve(a) for _, _, op in OPERATIONS for a in op["responses"].values()]
    checked = 0
    for answer in answers:
        media = answer.get("content", {}).get("application/json", {})
        values = [media["example"]] if "example" in media else []
        values += [example["value"] for example in media.get("examples", {}).values()]
        for value in values:
            check_body(answer, value)
            checked += 1
    assert checked > len(OPERATIONS)


def test_the_error_schema_rejects_other_shapes():
    answer = documented("/users/login", "post", 401)
    with pytest.raises(jsonschema.ValidationError):
        check_body(answer, {"error": "invalid_credentials"})
    with pytest.raises(jsonschema.ValidationError):
        check_body(answer, {"error": {"code": "x", "message": "y", "extra": 1}})


def test_it_serves_the_committed_document(gateway_client):
    response = gateway_client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == SPEC_PATH.read_bytes()
    assert response.headers["X-Request-ID"]
    again = gateway_client.get("/openapi.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_it_serves_a_docs_page_with_every_operation(gateway_client):
    response = gateway_client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "<script" not in page
    for path, method, op in OPERATIONS:
        assert f'id="{op["operationId"]}"' in page
        assert f"{method.upper()}</span> <code>{path}</code>" in page
    for name in SPEC["components"]["schemas"]:
        assert f'id="schema-{name}"' in page


def test_the_docs_page_escapes_the_document():
    assert docs.prose("a <b>`x<y>`</b> **z**") == (
        "<p>a &lt;b&gt;<code>x&lt;y&gt;</code>&lt;/b&gt; <strong>z</strong></p>"
    )


def test_its_own_answers_match_the_document(gateway_client):
    for path in ("/status", "/status/ready"):
        response = gateway_client.get(path)
        check_body(documented(path, "get", response.status_code), response.get_json())


def test_the_gateway_serves_the_documents_without_the_services_or_the_generator(tmp_path):
    script = f"""
import sys
from gateway import create_app
app = create_app({{"HTTP_PORT": 0, "DATA_DIR": {str(tmp_path)!r}, "JWT_SECRET": "x"}})
client = app.test_client()
assert client.get("/openapi.json").status_code == 200
assert client.get("/docs").status_code == 200
loaded = [m for m in sys.modules if m.split(".")[0] in ("user_service", "activity_service")]
loaded += [m for m in sys.modules if m.startswith("gateway.openapi")]
assert not loaded, loaded
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_services_answer_as_documented(stack):
    api = Api(stack)
    calls = []

    def call(method: str, path: str, body=None, token=None, **params):
        """Call the right service for a documented path; keep the answer to check it."""
        url = api.user_url if route_for(concrete(path))[0] == "user_service" else api.activity_url
        response = api.http.request(
            method,
            url + path.format(**params),
            json=body,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=10,
        )
        calls.append((path, method.lower(), response))
        return response.json()

    name = "doc" + uuid.uuid4().hex[:10]
    account = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
    user = call("POST", "/users/register", account)
    token = call("POST", "/users/login", {k: account[k] for k in ("email", "password")})["token"]
    ids = {"user_id": user["user_id"], "token": token}
    call("POST", "/users/register", account)  # 409
    call("POST", "/users/login", {"email": account["email"], "password": "wrong-horse"})  # 401
    call("GET", "/users/{user_id}", **ids)
    call("GET", "/users/{user_id}", user_id="someone-else", token=token)  # 403
    call("PATCH", "/users/{user_id}", {"weight_kg": 70}, **ids)
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    goal_id = call("POST", "/users/{user_id}/goals", goal, **ids)["goal_id"]
    call("POST", "/users/{user_id}/goals", {**goal, "goal_type": "steps"}, **ids)  # 400
    call("GET", "/users/{user_id}/goals", **ids)
    call("GET", "/users/{user_id}/goals/{goal_id}", goal_id=goal_id, **ids)
    call("GET", "/users/{user_id}/goals/{goal_id}", goal_id="nope", **ids)  # 404
    session_id = call(
        "POST", "/workouts/start", {"user_id": user["user_id"], "workout_type": "yoga"}, **ids
    )["session_id"]
    call("POST", "/workouts/start", {"user_id": user["user_id"], "workout_type": "yoga"}, **ids)
    call("POST", "/workouts/{session_id}/end", {}, session_id=session_id, **ids)
    call("GET", "/workouts/{session_id}", session_id=session_id, **ids)
    call("GET", "/users/{user_id}/workouts", **ids)
    call("GET", "/users/{user_id}/statistics", **ids)
    call("GET", "/users/{user_id}/statistics", user_id=user["user_id"], token="bad")  # 401
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {"target_value": 2}, goal_id=goal_id, **ids)
    call("DELETE", "/users/{user_id}/goals/{goal_id}", goal_id=goal_id, **ids)
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {"target_value": 3}, goal_id=goal_id, **ids)

    assert {response.status_code for _, _, response in calls} >= {200, 201, 400, 401, 404, 409}
    for path, method, response in calls:
        answer = documented(path, method, response.status_code)
        check_body(answer, response.json())
        codes = [e["value"]["error"]["code"] for e in _examples(answer)]
        if response.status_code >= 400:
            assert response.json()["error"]["code"] in codes, (method, path, response.text)


def _examples(answer: dict) -> list[dict]:
    return list(answer["content"]["application/json"].get("examples", {}).values())
