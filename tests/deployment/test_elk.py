"""The log stack's files parse and only use fields our processes really emit; setup imports them.

The emitted fields are taken from a real log line (the formatter of fitness/logs.py, with an
error and a correlation id) plus every dotted key of the ``extra=`` dicts in the code.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from fitness.config import COMMON_DEFAULTS
from tests.support import REPO_ROOT

ROOT = REPO_ROOT
ELK = ROOT / "elk"
PACKAGES = ("fitness", "user_service", "activity_service", "gateway", "etl")
# Fields the Logstash pipeline or Elasticsearch add to every event.
ADDED_DOWNSTREAM = {
    "event.dataset",
    "tags",
    "data_stream.type",
    "data_stream.dataset",
    "data_stream.namespace",
}
KQL_FIELD = re.compile(r"(?<![\w.\"])([@a-z_][\w.]*)\s*(?::|>=|<=|>|<)")
# One real event, with an error and inside a request, as every process formats it.
REAL_EVENT = """
import logging, sys
from fitness import logs
logs.configure_logging("svc", settings={"LOGSTASH_HOST": "", "DATA_DIR": "."})
logs.set_correlation_id("trace-1")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("x").exception("boom")
"""


def flatten(value, prefix: str = "") -> set[str]:
    """Return the dotted paths of the leaves of a JSON object."""
    if not isinstance(value, dict):
        return {prefix}
    return {path for key, item in value.items() for path in flatten(item, f"{prefix}{key}.")}


def emitted_fields() -> set[str]:
    """Return every field a log event of ours can carry."""
    line = subprocess.run(
        [sys.executable, "-c", REAL_EVENT], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    fields = {path.rstrip(".") for path in flatten(json.loads(line))}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            fields |= _extra_keys(ast.parse(path.read_text()))
    return fields


def _extra_keys(tree: ast.AST) -> set[str]:
    """Return the dotted string keys of every dict literal (the ``extra=`` fields of log calls)."""
    return {
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant)
        and isinstance(key.value, str)
        and re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", key.value)
    }


def template_fields() -> set[str]:
    """Return the fields the index template maps."""
    template = json.loads((ELK / "elasticsearch" / "index-template.json").read_text())
    return _mapped(template["template"]["mappings"]["properties"])


def _mapped(properties: dict, prefix: str = "") -> set[str]:
    fields = set()
    for name, spec in properties.items():
        if "properties" in spec:
            fields |= _mapped(spec["properties"], f"{prefix}{name}.")
        else:
            fields.add(prefix + name)
    return fields


def saved_objects() -> list[dict]:
    lines = (ELK / "kibana" / "saved-objects.ndjson").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def kibana_fields(objects: list[dict]) -> set[str]:
    """Return every field the data view, saved searches and visualisations refer to."""
    fields = {field for query in kql_queries(objects) for field in KQL_FIELD.findall(query)}
    for obj in objects:
        attributes = obj["attributes"]
        if obj["type"] == "index-pattern":
            fields |= set(json.loads(attributes["fieldFormatMap"]))
            fields.add(attributes["timeFieldName"])
        elif obj["type"] == "search":
            fields |= set(attributes["columns"]) | {name for name, _ in attributes["sort"]}
        elif obj["type"] == "lens":
            fields |= {
                column["sourceField"]
                for column in _lens_columns(attributes["state"])
                if column.get("sourceField", "___records___") != "___records___"
            }
    return fields


def kql_queries(objects: list[dict]) -> list[str]:
    """Return the KQL of every saved search, visualisation and visualisation column."""
    queries = []
    for obj in objects:
        attributes = obj["attributes"]
        if obj["type"] == "search":
            source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
            queries.append(source["query"]["query"])
        elif obj["type"] == "lens":
            queries.append(attributes["state"]["query"]["query"])
            columns = _lens_columns(attributes["state"])
            queries += [column["filter"]["query"] for column in columns if "filter" in column]
    return queries


def _lens_columns(state: dict) -> list[dict]:
    layers = state["datasourceStates"]["formBased"]["layers"].values()
    return [column for layer in layers for column in layer["columns"].values()]


def test_it_parses_every_json_file_of_the_log_stack():
    for path in ELK.rglob("*.json"):
        json.loads(path.read_text())
    objects = saved_objects()
    assert {obj["type"] for obj in objects} == {"index-pattern", "search", "lens", "dashboard"}
    for obj in objects:  # the JSON Kibana keeps in strings
        for key in ("fieldFormatMap", "panelsJSON", "optionsJSON"):
            if key in obj["attributes"]:
                json.loads(obj["attributes"][key])
        meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
        if "searchSourceJSON" in meta:
            json.loads(meta["searchSourceJSON"])


def test_it_maps_only_fields_the_processes_emit():
    unknown = template_fields() - emitted_fields() - ADDED_DOWNSTREAM
    assert not unknown, sorted(unknown)


def test_it_shows_in_kibana_only_mapped_fields():
    unmapped = kibana_fields(saved_objects()) - template_fields()
    assert not unmapped, sorted(unmapped)


def test_it_covers_the_fields_the_dashboard_needs():
    fields = kibana_fields(saved_objects())
    assert {"service.name", "event.duration", "trace.id", "breaker.state", "saga.state"} <= fields


def test_it_resolves_every_reference_between_saved_objects():
    objects = saved_objects()
    ids = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in ids, (obj["id"], reference)
    dashboard = next(obj for obj in objects if obj["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    names = {reference["name"] for reference in dashboard["references"]}
    assert {panel["panelRefName"] for panel in panels} == names


def test_it_names_the_event_actions_the_code_logs():
    code = "".join(path.read_text() for p in PACKAGES for path in (ROOT / p).rglob("*.py"))
    actions = {
        value
        for query in kql_queries(saved_objects())
        for clause in re.findall(r'event\.action\s*:\s*(\([^)]*\)|"[^"]*")', query)
        for value in re.findall(r'"([^"]+)"', clause)
    }
    assert {"saga", "breaker-state-change"} <= actions
    for action in actions:
        assert f'"event.action": "{action}"' in code, action


def test_it_listens_where_the_processes_ship():
    pipeline = (ELK / "logstash" / "pipeline" / "fitness.conf").read_text()
    assert f"port => {COMMON_DEFAULTS['LOGSTASH_PORT']}" in pipeline
    assert "codec => json_lines" in pipeline
    for field in ADDED_DOWNSTREAM - {"tags"}:
        assert field.split(".")[-1] in pipeline, field


@dataclass
class StandIn:
    """The stand-in Elasticsearch and Kibana: its URL, the requests it got, what it keeps."""

    url: str
    requests: list[tuple[str, str, dict, bytes]]
    security: dict[str, dict]


@pytest.fixture
def standin_elk():
    """Answer what elk/setup.py asks Elasticsearch and Kibana, and remember the requests."""
    requests: list[tuple[str, str, dict, bytes]] = []
    templates: dict[str, dict] = {}  # what Elasticsearch would keep
    security: dict[str, dict] = {"roles": {}, "users": {}, "tokens": {}}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append((self.command, self.path, dict(self.headers), body))
            status, answer = 200, {"acknowledged": True}
            if self.path.startswith("/_security/"):
                status, answer = _security(security, self.command, self.path, self.headers, body)
            elif self.path.endswith("/_rollover"):
                status = 404
            elif self.path.startswith("/_index_template/"):
                name = self.path.rsplit("/", 1)[1]
                if self.command == "PUT":
                    templates[name] = json.loads(body)
                elif name in templates:
                    answer = {
                        "index_templates": [{"name": name, "index_template": templates[name]}]
                    }
                else:
                    status, answer = 404, {"index_templates": []}
            elif self.path == "/api/status":
                answer = {"status": {"overall": {"level": "available"}}}
            elif self.path.startswith("/api/saved_objects/_import"):
                answer = {"success": True, "successCount": body.count(b'"coreMigrationVersion"')}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield StandIn(f"http://127.0.0.1:{server.server_address[1]}", requests, security)
    server.shutdown()
    server.server_close()


def _security(state: dict, method: str, path: str, headers, body: bytes) -> tuple[int, dict]:
    """Answer Elasticsearch's security API as far as elk/setup.py uses it."""
    kind, _, name = path.removeprefix("/_security/").partition("/")
    if kind == "_authenticate":
        return (200, {}) if _logs_in(state, headers.get("Authorization", "")) else (401, {})
    if kind in ("role", "user"):
        kept = state[f"{kind}s"]
        if method == "PUT":
            kept[name] = json.loads(body)
            return 200, {kind: {"created": True}}
        return (200, {name: kept[name]}) if name in kept else (404, {})
    token = name.rsplit("/", 1)[1]  # service/elastic/kibana/credential/token/<name>
    if method == "DELETE":
        found = state["tokens"].pop(token, None) is not None
        return (200 if found else 404), {"found": found}
    if token in state["tokens"]:
        return 409, {}
    state["tokens"][token] = base64.b64encode(os.urandom(24)).decode()
    return 200, {"created": True, "token": {"name": token, "value": state["tokens"][token]}}


def _logs_in(state: dict, authorization: str) -> bool:
    scheme, _, credentials = authorization.partition(" ")
    if scheme == "Bearer":
        return credentials in state["tokens"].values()
    user, _, password = base64.b64decode(credentials or b"").decode().partition(":")
    return state["users"].get(user, {}).get("password") == password


def test_it_sets_up_elasticsearch_and_kibana_in_one_run(standin_elk):
    url, requests = standin_elk.url, standin_elk.requests
    env = {"ELASTICSEARCH_URL": url, "KIBANA_URL": url, "ELK_SETUP_WAIT_SECONDS": "10"}
    result = subprocess.run(
        [sys.executable, str(ELK / "setup.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    sent = {(method, path.split("?")[0]): body for method, path, _, body in requests}
    template = json.loads(sent[("PUT", "/_index_template/logs-fitness")])
    assert template["index_patterns"] == ["logs-fitness-*"]
    assert ("PUT", "/_ilm/policy/logs-fitness") in sent
    imported = sent[("POST", "/api/saved_objects/_import")]
    assert (ELK / "kibana" / "saved-objects.ndjson").read_bytes() in imported
    import_headers = next(h for m, p, h, _ in requests if p.startswith("/api/saved_objects"))
    assert "kbn-xsrf" in {name.lower() for name in import_headers}
    assert f"{len(saved_objects())} Kibana objects imported" in result.stdout


def _setup(url: str, *parts: str, **files: str) -> subprocess.CompletedProcess:
    env = {"ELASTICSEARCH_URL": url, "KIBANA_URL": url, "ELK_SETUP_WAIT_SECONDS": "10", **files}
    return subprocess.run(
        [sys.executable, str(ELK / "setup.py"), *parts],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_setting_up_elasticsearch_again_changes_nothing_and_never_waits_for_kibana(standin_elk):
    url, requests = standin_elk.url, standin_elk.requests
    first = _setup(url, "elasticsearch")
    assert first.returncode == 0, first.stderr
    assert not any(path.startswith("/api/") for _, path, _, _ in requests)  # no Kibana at all
    installed = [(m, p) for m, p, _, _ in requests if m in ("PUT", "POST") and "template" in p]
    assert installed == [("PUT", "/_index_template/logs-fitness")]
    assert ("POST", "/logs-fitness-default/_rollover") in [(m, p) for m, p, _, _ in requests]

    requests.clear()
    again = _setup(url, "elasticsearch")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    changes = [(m, p) for m, p, _, _ in requests if m in ("PUT", "POST")]
    assert changes == [("PUT", "/_ilm/policy/logs-fitness")]  # no template, no rollover


def test_it_gives_logstash_a_user_and_kibana_a_token_once_logged_in_as_elastic(
    standin_elk, tmp_path
):
    url, requests, security = standin_elk.url, standin_elk.requests, standin_elk.security
    security["users"]["elastic"] = {"password": "elastic-pw"}
    (tmp_path / "elastic").write_text("elastic-pw\n")
    (tmp_path / "logstash").write_text("logstash-pw\n")
    token_file = tmp_path / "token" / "kibana.token"
    token_file.parent.mkdir()
    files = {
        "ELASTIC_PASSWORD_FILE": str(tmp_path / "elastic"),
        "LOGSTASH_PASSWORD_FILE": str(tmp_path / "logstash"),
        "KIBANA_TOKEN_FILE": str(token_file),
    }

    first = _setup(url, "elasticsearch", **files)
    assert first.returncode == 0, first.stderr
    role = security["roles"]["fitness_logstash_writer"]
    assert role["cluster"] == ["monitor"]
    assert role["indices"] == [
        {"names": ["logs-fitness-*"], "privileges": ["create_doc", "auto_configure"]}
    ]
    assert security["users"]["fitness_logstash"] == {
        "password": "logstash-pw",
        "roles": ["fitness_logstash_writer"],
    }
    assert token_file.read_text().strip() == security["tokens"]["compose"]
    assert oct(token_file.stat().st_mode & 0o777) == oct(0o640)
    elastic = "Basic " + base64.b64encode(b"elastic:elastic-pw").decode()
    for _, path, headers, _ in requests:
        if path != "/_security/_authenticate":  # the probes log in as what they check
            assert headers.get("Authorization") == elastic, path

    requests.clear()
    again = _setup(url, "elasticsearch", **files)
    assert again.returncode == 0, again.stderr
    changes = [(m, p) for m, p, _, _ in requests if m in ("PUT", "POST", "DELETE")]
    assert changes == [("PUT", "/_ilm/policy/logs-fitness")]  # no user, role or token again

    token_file.unlink()  # lost: a token's value cannot be read back, so a new one is made
    lost = _setup(url, "elasticsearch", **files)
    assert lost.returncode == 0, lost.stderr
    assert token_file.read_text().strip() == security["tokens"]["compose"]


def test_log_shipping_in_compose_waits_for_elasticsearch_never_for_kibana():
    services = yaml.safe_load((ELK.parent / "docker-compose.yml").read_text())["services"]

    def needs(name: str) -> set[str]:
        direct = set(services[name].get("depends_on", {}))
        return direct.union(*(needs(d) for d in direct)) if direct else set()

    assert "es-setup" in needs("logstash")
    assert not {"kibana", "kibana-setup"} & needs("logstash")
