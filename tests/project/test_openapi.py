"""The OpenAPI document, its Postman collection and the docs page: valid, current and true."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import jsonschema
import pytest
from flask import Blueprint, Flask
from openapi_spec_validator import validate
from requests import Response

import activity_service.routes
import user_service.routes
from apidocs import POSTMAN_PATH, SPEC_PATH, build_spec, to_json
from apidocs.bodies import BODY_MODELS, SAGA_BODY_MODELS
from apidocs.error_table import error_codes, error_table
from apidocs.postman import build_collection
from devstack.stack import LocalStack
from gateway import create_app, docs
from gateway.routes import ROUTES, route_for
from gateway.sagas import routes as saga_routes
from gateway.sagas.goals import SAGAS
from tests.support.client import Api, GatewayApi, wait_until
from tests.support.stack import gateway_tier, make_replicas

SPEC = json.loads(SPEC_PATH.read_text())
OPERATIONS = [
    (path, method, op) for path, item in SPEC["paths"].items() for method, op in item.items()
]
GATEWAY_OWN_PATHS = {"/status", "/status/ready", "/openapi.json", "/docs", "/sagas/{saga_id}"}
SAGA_OPERATIONS = {
    (method, path): op["x-saga"] for path, method, op in OPERATIONS if "x-saga" in op
}
SAMPLE_IDS = {
    "user_id": "u-1",
    "goal_id": "g-1",
    "session_id": "s-1",
    "saga_id": "x-1",
    "import_id": "i-1",
}
# Headers whose presence on an answer the document promises per response.
DOCUMENTED_HEADERS = ("X-Saga-ID", "Location", "Retry-After", "X-Cache", "Idempotent-Replayed")
REGENERATE = "stale: run `python -m apidocs` and commit the result"


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
    assert {"token", "userId", "goalId", "sessionId", "sagaId"} <= set(variables)
    create_goal = requests[("POST", "{{baseUrl}}/users/{{userId}}/goals")]["event"][0]
    assert 'pm.response.headers.get("X-Saga-ID")' in "\n".join(create_goal["script"]["exec"])


def _postman_var(match: re.Match) -> str:
    head, *rest = match[1].split("_")
    return "{{" + head + "".join(word.title() for word in rest) + "}}"


def test_every_operation_is_routed_by_the_gateway(gateway_client):
    routes = gateway_client.application.url_map.bind("localhost")
    for path, method, op in OPERATIONS:
        # Raises NotFound or MethodNotAllowed when the gateway has no such route.
        endpoint, _ = routes.match(concrete(path), method=method.upper())
        if "x-saga" in op:
            assert endpoint.startswith("sagas."), f"{method.upper()} {path} is not run as a saga"
        elif path not in GATEWAY_OWN_PATHS:
            assert endpoint == "gateway.forward", f"{method.upper()} {path} is not forwarded"
            _, path_user = route_for(concrete(path))
            expected_user = SAMPLE_IDS["user_id"] if "{user_id}" in path else None
            assert path_user == expected_user, f"the edge would not check the user of {path}"


def test_every_gateway_route_is_documented():
    paths = [concrete(path) for path in SPEC["paths"]]
    for pattern, service in ROUTES:
        assert any(pattern.match(path) for path in paths), f"{pattern.pattern} ({service})"


def served_by(blueprint: Blueprint) -> set[tuple[str, str]]:
    """Return the (method, path) pairs ``blueprint`` serves, with paths as the document has them."""
    app = Flask(blueprint.name)
    app.register_blueprint(blueprint)
    return {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


@pytest.mark.parametrize(
    ("service", "blueprint"),
    [("user_service", user_service.routes.bp), ("activity_service", activity_service.routes.bp)],
)
def test_it_documents_exactly_the_operations_a_service_serves(service, blueprint):
    # Goal writes are the gateway's sagas alone: the user service serves only goal reads.
    documented_here = {
        (method, path)
        for path, method, _ in OPERATIONS
        if path not in GATEWAY_OWN_PATHS
        and route_for(concrete(path))[0] == service
        and not ("/goals" in path and method != "get")
    }
    assert documented_here == served_by(blueprint)


def test_it_documents_the_saga_routes_as_saga_operations():
    assert served_by(saga_routes.bp) == set(SAGA_OPERATIONS) | {("get", "/sagas/{saga_id}")}
    assert sorted(SAGA_OPERATIONS.values()) == sorted(SAGAS)
    for path, method, op in OPERATIONS:
        if "x-saga" in op:
            assert {"202", "503"} <= set(op["responses"]), (method, path)
            assert "X-Saga-ID" in documented(path, method, int(min(op["responses"])))["headers"]


def test_request_examples_are_accepted_by_the_services_models():
    bodies = [op["requestBody"] for _, _, op in OPERATIONS if "requestBody" in op]
    bodies = [body for body in bodies if "multipart/form-data" not in body["content"]]  # a file
    assert len(bodies) == len(BODY_MODELS)
    for body in bodies:
        media = body["content"]["application/json"]
        name = media["schema"]["$ref"].rsplit("/", 1)[-1]
        BODY_MODELS[name].model_validate(media["example"])
        if name in SAGA_BODY_MODELS:  # the gateway checks a goal write's types first
            SAGA_BODY_MODELS[name].model_validate(media["example"])


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
loaded += [m for m in sys.modules if m.startswith("apidocs")]
assert not loaded, loaded
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


class Calls:
    """Calls documented paths, as a client would, and keeps every answer to check it."""

    def __init__(self, api: Api):
        self.api = api
        self.answers: list[tuple[str, str, Response]] = []

    def __call__(self, method: str, path: str, body=None, token=None, **params):
        api = self.api
        # Through a gateway both URLs are the gateway's, which also answers its own paths.
        forwarded = path not in GATEWAY_OWN_PATHS
        to_activity = forwarded and route_for(concrete(path))[0] == "activity_service"
        url = api.activity_url if to_activity else api.user_url
        response = api.http.request(
            method,
            url + path.format(**params),
            json=body,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=10,
        )
        self.answers.append((path, method.lower(), response))
        return response

    def new_user(self) -> dict[str, str]:
        """Register and log in through the documented operations; return user_id and token."""
        name = "doc" + uuid.uuid4().hex[:10]
        account = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
        user = self("POST", "/users/register", account).json()
        login = {k: account[k] for k in ("email", "password")}
        return {
            "user_id": user["user_id"],
            "token": self("POST", "/users/login", login).json()["token"],
        }

    def check(self) -> set[int]:
        """Check every answer against the document; return the statuses seen."""
        for path, method, response in self.answers:
            answer = documented(path, method, response.status_code)
            check_body(answer, response.json())
            for header in DOCUMENTED_HEADERS:
                if header in response.headers:
                    assert header in answer["headers"], (method, path, response.status_code, header)
            if response.status_code >= 400:
                codes = [e["value"]["error"]["code"] for e in _examples(answer)]
                assert response.json()["error"]["code"] in codes, (method, path, response.text)
        return {response.status_code for _, _, response in self.answers}


def _examples(answer: dict) -> list[dict]:
    return list(answer["content"]["application/json"].get("examples", {}).values())


def test_the_services_answer_as_documented(stack):
    call = Calls(Api(stack))
    name = "doc" + uuid.uuid4().hex[:10]
    account = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
    user = call("POST", "/users/register", account).json()
    login = {k: account[k] for k in ("email", "password")}
    token = call("POST", "/users/login", login).json()["token"]
    ids = {"user_id": user["user_id"], "token": token}
    call("POST", "/users/register", account)  # 409
    call("POST", "/users/login", {"email": account["email"], "password": "wrong-horse"})  # 401
    call("GET", "/users/{user_id}", **ids)
    call("GET", "/users/{user_id}", user_id="someone-else", token=token)  # 403
    call("PATCH", "/users/{user_id}", {"weight_kg": 70}, **ids)
    call("PATCH", "/users/{user_id}", {"weight_kg": -1}, **ids)  # 400
    # Goals are written by the gateway's sagas (answers checked below); the service reads them.
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    goal_id = call.api.create_goal(user["user_id"], token, **goal)["goal_id"]
    call("GET", "/users/{user_id}/goals", **ids)
    call("GET", "/users/{user_id}/goals/{goal_id}", goal_id=goal_id, **ids)
    call("GET", "/users/{user_id}/goals/{goal_id}", goal_id="nope", **ids)  # 404
    body = {"user_id": user["user_id"], "workout_type": "yoga"}
    session_id = call("POST", "/workouts/start", body, **ids).json()["session_id"]
    call("POST", "/workouts/start", body, **ids)  # 409
    call("POST", "/workouts/{session_id}/end", {}, session_id=session_id, **ids)
    call("GET", "/workouts/{session_id}", session_id=session_id, **ids)
    call("GET", "/users/{user_id}/workouts", **ids)
    call("GET", "/users/{user_id}/statistics", **ids)
    call("GET", "/users/{user_id}/statistics", user_id=user["user_id"], token="bad")  # 401
    call("GET", "/users/{user_id}/suggestions", **ids)

    assert call.check() >= {200, 201, 400, 401, 404, 409}


@pytest.fixture
def gateway_stack(tmp_path):
    """One replica of each service behind a gateway and its state Redis; sagas wait 2 s."""
    env = {
        "FITNESS_SAGA_WAIT_SECONDS": "2",
        "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "4",  # longer than the wait: a dead service → 202
        "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
    }
    stack = LocalStack(tmp_path, [*make_replicas(1), *gateway_tier()], extra_env=env)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    yield stack
    stack.stop()


def test_the_gateway_answers_goal_writes_as_documented(gateway_stack):
    call = Calls(GatewayApi(gateway_stack))
    ids = call.new_user()
    goal = {"goal_type": "active_minutes", "target_value": 90, "target_date": "2099-01-01"}
    created = call("POST", "/users/{user_id}/goals", goal, **ids)
    goal_id = created.json()["goal_id"]
    call("POST", "/users/{user_id}/goals", {**goal, "target_date": "2001-01-01"}, **ids)  # 400
    call("POST", "/users/{user_id}/goals", {**goal, "target_value": "lots"}, **ids)  # 400
    suggested = call("GET", "/users/{user_id}/suggestions", **ids).json()["suggestions"]
    assert [suggestion["goal_id"] for suggestion in suggested] == [goal_id]
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {}, goal_id=goal_id, **ids)  # 400
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {"target_value": 2}, goal_id=goal_id, **ids)
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {"target_value": 2}, goal_id="nope", **ids)
    call("DELETE", "/users/{user_id}/goals/{goal_id}", goal_id=goal_id, **ids)
    call("PATCH", "/users/{user_id}/goals/{goal_id}", {"target_value": 3}, goal_id=goal_id, **ids)
    call("GET", "/sagas/{saga_id}", saga_id="nope", **ids)  # 404
    for path, method, response in list(call.answers):
        if (method, path) in SAGA_OPERATIONS and "X-Saga-ID" in response.headers:
            saga = call("GET", "/sagas/{saga_id}", saga_id=response.headers["X-Saga-ID"], **ids)
            assert saga.json()["type"] == SAGA_OPERATIONS[(method, path)]
    assert call.check() >= {200, 201, 400, 404, 409}

    # A service that stays down: the saga outlasts the wait (202), then is undone.
    for replica in gateway_stack.replicas_of("activity_service"):
        gateway_stack.kill(replica.name)
    accepted = call("POST", "/users/{user_id}/goals", goal, **ids)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == accepted.json()["status_url"]

    def state() -> str:
        saga = call("GET", "/sagas/{saga_id}", saga_id=accepted.json()["saga_id"], **ids)
        return saga.json()["state"]

    assert wait_until(lambda: state() in ("completed", "compensated", "failed"), 30, 0.5)
    assert state() == "compensated"
    for replica in gateway_stack.replicas_of("state_redis"):
        gateway_stack.kill(replica.name)
    call("POST", "/users/{user_id}/goals", goal, **ids)  # 503: the saga log is unreachable
    assert call.check() >= {202, 503}


# --- the README's error codes -------------------------------------------------------------

CODE_PATTERNS = (
    r'\bcode = "([a-z_]+)"',  # a DomainError subclass
    r'\bcode="([a-z_]+)"',
    r'error_response\(\s*\d{3},\s*"([a-z_]+)"',  # fitness.web's own answers
    r'\(\d{3}, "([a-z_]+)"\)',  # the gateway's (status, code) pairs
)


def test_the_readme_lists_every_error_code_as_the_code_has_them():
    """The table is written from the error classes (``python -m apidocs``): it says
    what they say, and every code written anywhere in the services and the gateway is in it
    (the live socket's own codes are in its protocol's section)."""
    guide = (SPEC_PATH.parents[1] / "docs" / "api.md").read_text()
    assert error_table() in guide, "docs/api.md: run python -m apidocs"
    listed = {code for _, code, _ in error_codes()}
    sources = [
        path
        for package in ("fitness", "user_service", "activity_service", "gateway")
        for path in (SPEC_PATH.parents[1] / package).rglob("*.py")
        if "live" not in path.parts and "openapi" not in path.parts
    ]
    written = {
        code
        for path in sources
        for pattern in CODE_PATTERNS
        for code in re.findall(pattern, path.read_text())
    }
    assert len(written) > 25  # the patterns still find the codes
    assert written - listed == set()
