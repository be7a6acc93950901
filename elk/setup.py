"""Set up the log stack: Elasticsearch's template, users and tokens; Kibana's saved objects.

Two parts, so log shipping never waits for Kibana: compose runs ``setup.py elasticsearch``
(``es-setup``) before Logstash and Kibana start, and ``setup.py kibana`` (``kibana-setup``) whenever
Kibana is up. No argument runs both. Running either again is safe and changes nothing that is
already as it should be: the template and the role carry the hash of what they were made from,
a user or a token is made again only when it no longer logs in, and only a changed template is
followed by a rollover (so the data stream's next backing index takes it).

Security (compose turns it on) is driven by files, each optional:

- ``ELASTIC_PASSWORD_FILE``: the ``elastic`` superuser's password; every request logs in with it.
- ``LOGSTASH_PASSWORD_FILE``: make the user Logstash writes with (``fitness_logstash``), whose
  role may only add documents to the ``logs-fitness-*`` data streams.
- ``KIBANA_TOKEN_FILE``: make a service account token for Kibana (``elastic/kibana``) and write
  it to this file, readable by the file's group (Kibana's), which compose gives Kibana.

Only the standard library, so any Python 3 image runs it:

    ELASTICSEARCH_URL=http://localhost:9200 KIBANA_URL=http://localhost:5601 python elk/setup.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "logs-fitness"
DATA_STREAM = "logs-fitness-default"
DATA_VIEW_ID = "fitness-logs"
WAIT_SECONDS = float(os.environ.get("ELK_SETUP_WAIT_SECONDS", "300"))
TIMEOUT_SECONDS = 30
LOGSTASH_USER = "fitness_logstash"
LOGSTASH_ROLE = "fitness_logstash_writer"
# What Logstash needs and nothing more: the cluster's version and licence (monitor), and adding
# documents to our data streams, creating them on the first event (auto_configure). It cannot
# read, delete or touch any other index.
LOGSTASH_ROLE_BODY = {
    "cluster": ["monitor"],
    "indices": [{"names": [f"{NAME}-*"], "privileges": ["create_doc", "auto_configure"]}],
}
KIBANA_SERVICE = "elastic/kibana"
KIBANA_TOKEN_NAME = "compose"


@dataclass
class Api:
    """One HTTP API (Elasticsearch's or Kibana's) and the credentials setup uses on it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> bytes:
        """Send one request; return the body, or raise unless the status is 2xx or in ``allow``."""
        url = f"{self.url.rstrip('/')}{path}"
        every = {**self.headers, **(headers or {})}
        req = urllib.request.Request(url, data=body, method=method, headers=every)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in allow:
                return exc.read()
            raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc

    def send_json(self, method: str, path: str, document: dict, allow=()) -> dict:
        """Send ``document`` as JSON; return the JSON answer."""
        body = json.dumps(document).encode()
        answer = self.request(method, path, body, {"Content-Type": "application/json"}, allow)
        return json.loads(answer or b"{}")

    def logs_in(self, authorization: str) -> bool:
        """Tell whether Elasticsearch accepts ``authorization`` (an Authorization header)."""
        path = "/_security/_authenticate"
        headers = {"Authorization": authorization}
        try:
            Api(self.url).request("GET", path, headers=headers)
        except RuntimeError:
            return False
        return True

    def wait_for(self, path: str, ready: Callable[[bytes], bool] = lambda body: True) -> None:
        """Poll ``path`` until it answers 2xx and ``ready`` accepts the body."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                if ready(self.request("GET", path)):
                    return
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                if time.monotonic() > deadline:
                    message = f"{self.url}{path} not ready after {WAIT_SECONDS:.0f} s: {exc}"
                    raise TimeoutError(message) from exc
            time.sleep(2)


def main(argv: list[str]) -> int:
    """Set up the parts named in ``argv`` ("elasticsearch", "kibana"; none: both)."""
    parts = set(argv) or {"elasticsearch", "kibana"}
    if not parts <= {"elasticsearch", "kibana"}:
        print("usage: setup.py [elasticsearch] [kibana]", file=sys.stderr)
        return 2
    login = _superuser_login()
    if "elasticsearch" in parts:
        es = Api(os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200"), login)
        set_up_elasticsearch(es)
        set_up_security(es)
    if "kibana" in parts:
        set_up_kibana(Api(os.environ.get("KIBANA_URL", "http://kibana:5601"), login))
    return 0


def _superuser_login() -> dict[str, str]:
    """Return the Authorization header of the elastic user, if its password file is given."""
    password = _read_secret("ELASTIC_PASSWORD_FILE")
    return {"Authorization": basic_auth("elastic", password)} if password else {}


def _read_secret(variable: str) -> str | None:
    path = os.environ.get(variable)
    return Path(path).read_text().strip() if path else None


def basic_auth(user: str, password: str) -> str:
    """Return the Authorization header value for ``user`` and ``password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def set_up_elasticsearch(es: Api) -> None:
    """Install the ILM policy, and the index template if it differs from the installed one."""
    es.wait_for("/_cluster/health?wait_for_status=yellow&timeout=5s")
    put_file(es, f"/_ilm/policy/{NAME}", HERE / "elasticsearch" / "ilm-policy.json")
    template_file = HERE / "elasticsearch" / "index-template.json"
    digest = hashlib.sha256(template_file.read_bytes()).hexdigest()
    if _installed_template_digest(es) == digest:
        print(f"elk-setup: template {NAME} is up to date")
        return
    template = json.loads(template_file.read_bytes())
    template["_meta"] = {**template.get("_meta", {}), "source_sha256": digest}
    es.send_json("PUT", f"/_index_template/{NAME}", template)
    # An existing data stream takes a changed template at its next backing index: start one.
    es.request("POST", f"/{DATA_STREAM}/_rollover", allow=(404,))
    print(f"elk-setup: template {NAME} installed")


def _installed_template_digest(es: Api) -> str | None:
    answer = json.loads(es.request("GET", f"/_index_template/{NAME}", allow=(404,)) or b"{}")
    for item in answer.get("index_templates", []):
        return item.get("index_template", {}).get("_meta", {}).get("source_sha256")
    return None


def set_up_security(es: Api) -> None:
    """Make Logstash's user and Kibana's token, as far as their files are given."""
    logstash_password = _read_secret("LOGSTASH_PASSWORD_FILE")
    if logstash_password:
        ensure_role(es, LOGSTASH_ROLE, LOGSTASH_ROLE_BODY)
        ensure_user(es, LOGSTASH_USER, logstash_password, [LOGSTASH_ROLE])
    token_file = os.environ.get("KIBANA_TOKEN_FILE")
    if token_file:
        ensure_kibana_token(es, Path(token_file))


def ensure_role(es: Api, name: str, body: dict) -> None:
    """Create or update role ``name`` unless it was made from this very ``body``."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    answer = json.loads(es.request("GET", f"/_security/role/{name}", allow=(404,)) or b"{}")
    if answer.get(name, {}).get("metadata", {}).get("source_sha256") == digest:
        print(f"elk-setup: role {name} is up to date")
        return
    es.send_json("PUT", f"/_security/role/{name}", {**body, "metadata": {"source_sha256": digest}})
    print(f"elk-setup: role {name} set")


def ensure_user(es: Api, name: str, password: str, roles: list[str]) -> None:
    """Create or update user ``name`` unless it logs in with ``password`` and has ``roles``."""
    answer = json.loads(es.request("GET", f"/_security/user/{name}", allow=(404,)) or b"{}")
    has_roles = answer.get(name, {}).get("roles") == roles
    if has_roles and es.logs_in(basic_auth(name, password)):
        print(f"elk-setup: user {name} is up to date")
        return
    es.send_json("PUT", f"/_security/user/{name}", {"password": password, "roles": roles})
    print(f"elk-setup: user {name} set")


def ensure_kibana_token(es: Api, path: Path) -> None:
    """Write a service token for Kibana to ``path`` unless the one there still logs in."""
    if path.exists() and es.logs_in(f"Bearer {path.read_text().strip()}"):
        print(f"elk-setup: Kibana's token in {path} is valid")
        return
    # A token's value is shown once, when it is made: one whose file is lost is made anew.
    token_path = f"/_security/service/{KIBANA_SERVICE}/credential/token/{KIBANA_TOKEN_NAME}"
    es.request("DELETE", token_path, allow=(404,))
    value = es.send_json("POST", token_path, {})["token"]["value"]
    partial = path.with_name(f".{path.name}.new")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    partial.replace(path)
    print(f"elk-setup: Kibana's token written to {path}")


def set_up_kibana(kibana: Api) -> None:
    """Import the saved objects (overwriting) and make the data view the default."""
    kibana.wait_for("/api/status", ready=_kibana_available)
    imported = import_saved_objects(kibana, HERE / "kibana" / "saved-objects.ndjson")
    body = json.dumps({"data_view_id": DATA_VIEW_ID, "force": True}).encode()
    kibana.request("POST", "/api/data_views/default", body, _kibana_headers("application/json"))
    print(f"elk-setup: {imported} Kibana objects imported")


def put_file(api: Api, path: str, file: Path) -> None:
    """PUT the JSON document in ``file`` to ``path``."""
    api.request("PUT", path, file.read_bytes(), {"Content-Type": "application/json"})


def import_saved_objects(kibana: Api, path: Path) -> int:
    """Import (overwriting) the saved objects in ``path``; return how many were imported."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'.encode(),
            b"Content-Type: application/ndjson\r\n\r\n",
            path.read_bytes(),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    headers = _kibana_headers(f"multipart/form-data; boundary={boundary}")
    answer = kibana.request("POST", "/api/saved_objects/_import?overwrite=true", body, headers)
    result = json.loads(answer)
    if not result.get("success"):
        raise RuntimeError(f"Kibana refused some saved objects: {result.get('errors')}")
    return int(result.get("successCount", 0))


def _kibana_headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "kbn-xsrf": "elk-setup"}


def _kibana_available(body: bytes) -> bool:
    return json.loads(body)["status"]["overall"]["level"] == "available"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
