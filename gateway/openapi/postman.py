"""A Postman Collection v2.1 made from the OpenAPI document: a folder per tag, ready to run.

Requests use ``{{baseUrl}}`` and bearer ``{{token}}``; path ids are collection variables
(``{{userId}}``, ``{{goalId}}``, ``{{sessionId}}``) that register, login, creating a goal and
starting a workout fill in from their answers, so the requests can be sent in order.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.docs import resolve

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# Answer fields whose values later requests need, and the variables that keep them.
CAPTURED = {"token": "token", "user_id": "userId", "goal_id": "goalId", "session_id": "sessionId"}


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
    if body:
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
    return {key: variables.get(value, value) for key, value in example.items()}


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
    """Return a test script that keeps the ids a POST answers with, for the next requests."""
    if method != "post":
        return []
    ok = next(answer for status, answer in op["responses"].items() if status.startswith("2"))
    schema = resolve(spec, ok["content"]["application/json"]["schema"])
    fields = [name for name in CAPTURED if name in schema.get("properties", {})]
    if not fields:
        return []
    sets = [f'    pm.collectionVariables.set("{CAPTURED[name]}", body.{name});' for name in fields]
    return ["if (pm.response.code < 300) {", "    const body = pm.response.json();", *sets, "}"]


def _camel(name: str) -> str:
    return re.sub(r"_(\w)", lambda m: m[1].upper(), name)
