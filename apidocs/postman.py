"""A Postman Collection v2.1 made from the OpenAPI document: a folder per tag, ready to run.

Requests use ``{{baseUrl}}`` and bearer ``{{token}}``; path ids are collection variables
(``{{userId}}``, ``{{goalId}}``, ``{{sessionId}}``, ``{{sagaId}}``) that register, login, the goal
writes and starting a workout fill in from their answers, so the requests can be sent in order.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.docs import resolve

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# Answer fields whose values later requests need, and the variables that keep them.
CAPTURED = {"token": "token", "user_id": "userId", "goal_id": "goalId", "session_id": "sessionId"}
SAGA_HEADER = "X-Saga-ID"  # goal writes name their saga here: kept as ``{{sagaId}}``


def build_collection(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a Postman collection of every operation in ``spec``."""
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    folders = [
        {
            "name": tag["name"],
            "description": tag["description"],
            "item": [
                _request(spec, path, method, op)
                for path, method, op in operations
                if tag["name"] in op["tags"]
            ],
        }
        for tag in spec["tags"]
    ]
    path_variables = sorted(
        {_camel(name) for path, _, _ in operations for name in re.findall(r"{(\w+)}", path)}
    )
    return {
        "info": {
            "name": spec["info"]["title"],
            "description": spec["info"]["description"],
            "schema": SCHEMA,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}"}]},
        "variable": [
            {"key": "baseUrl", "value": spec["servers"][0]["url"]},
            {"key": "token", "value": ""},
            *({"key": name, "value": ""} for name in path_variables),
        ],
        "item": folders,
    }


def _request(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    params = [resolve(spec, param) for param in op.get("parameters", [])]
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": [_header(param) for param in params if param["in"] == "header"],
        "url": _url(path, [param for param in params if param["in"] == "query"]),
        "description": op.get("description", op["summary"]),
    }
    if op.get("security") == []:
        request["auth"] = {"type": "noauth"}
    body = op.get("requestBody")
    if body and "multipart/form-data" in body["content"]:
        request["body"] = {
            "mode": "formdata",
            "formdata": [{"key": "file", "type": "file", "src": []}],
        }
    elif body:
        example = _with_variables(spec, body["content"]["application/json"]["example"])
        request["header"].insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(example, indent=2),
            "options": {"raw": {"language": "json"}},
        }
    item: dict[str, Any] = {"name": op["summary"], "request": request, "response": []}
    script = _capture_script(spec, method, op)
    if script:
        item["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": script}}]
    return item


def _with_variables(spec: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """Return the example body with ids that are path-parameter examples as variables."""
    variables = {
        param["example"]: "{{" + _camel(param["name"]) + "}}"
        for param in spec["components"]["parameters"].values()
        if param["in"] == "path" and "example" in param
    }
    return {
        key: variables.get(value, value) if isinstance(value, str) else value
        for key, value in example.items()
    }


def _url(path: str, query: list[dict[str, Any]]) -> dict[str, Any]:
    postman_path = re.sub(r"{(\w+)}", lambda m: "{{" + _camel(m[1]) + "}}", path)
    pairs = [(param["name"], str(param["schema"].get("default", ""))) for param in query]
    raw = "{{baseUrl}}" + postman_path
    if pairs:
        raw += "?" + "&".join(f"{key}={value}" for key, value in pairs)
    url: dict[str, Any] = {
        "raw": raw,
        "host": ["{{baseUrl}}"],
        "path": postman_path.strip("/").split("/"),
    }
    if pairs:
        url["query"] = [{"key": key, "value": value} for key, value in pairs]
    return url


def _header(param: dict[str, Any]) -> dict[str, Any]:
    """Return an optional header, switched off until the user turns it on."""
    return {
        "key": param["name"],
        "value": "{{$guid}}",
        "description": param["description"],
        "disabled": True,
    }


def _capture_script(spec: dict[str, Any], method: str, op: dict[str, Any]) -> list[str]:
    """Return a test script that keeps the ids an answer carries, for the next requests."""
    status, ok = next((s, answer) for s, answer in op["responses"].items() if s.startswith("2"))
    ok = resolve(spec, ok)
    script = []
    media = ok["content"].get("application/json", {})
    properties = resolve(spec, media["schema"]).get("properties", {}) if media else {}
    fields = [name for name in CAPTURED if name in properties]
    if method == "post" and fields:
        sets = [f'    pm.collectionVariables.set("{CAPTURED[n]}", body.{n});' for n in fields]
        # Only the documented success has the ids (a goal write's 202 names just its saga).
        script += [f"if (pm.response.code === {status}) {{", "    const body = pm.response.json();"]
        script += [*sets, "}"]
    if SAGA_HEADER in ok.get("headers", {}):
        script += [
            f'if (pm.response.headers.has("{SAGA_HEADER}")) {{',
            f'    pm.collectionVariables.set("sagaId", pm.response.headers.get("{SAGA_HEADER}"));',
            "}",
        ]
    return script


def _camel(name: str) -> str:
    return re.sub(r"_(\w)", lambda m: m[1].upper(), name)
