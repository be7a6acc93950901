"""Set up the log stack: the index template in Elasticsearch, the saved objects in Kibana.

Two parts, so log shipping never waits for Kibana: compose runs ``setup.py elasticsearch``
(``es-setup``) before Logstash starts, and ``setup.py kibana`` (``kibana-setup``) whenever Kibana
is up. No argument runs both. Running either again is safe and changes nothing that is already
as the files say: the template carries the hash of its file, and only a changed template is
installed again and followed by a rollover (so the data stream's next backing index takes it).
Only the standard library, so any Python 3 image runs it:

    ELASTICSEARCH_URL=http://localhost:9200 KIBANA_URL=http://localhost:5601 python elk/setup.py
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "logs-fitness"
DATA_STREAM = "logs-fitness-default"
DATA_VIEW_ID = "fitness-logs"
WAIT_SECONDS = float(os.environ.get("ELK_SETUP_WAIT_SECONDS", "300"))
TIMEOUT_SECONDS = 30


def main(argv: list[str]) -> int:
    """Set up the parts named in ``argv`` ("elasticsearch", "kibana"; none: both)."""
    parts = set(argv) or {"elasticsearch", "kibana"}
    if not parts <= {"elasticsearch", "kibana"}:
        print("usage: setup.py [elasticsearch] [kibana]", file=sys.stderr)
        return 2
    if "elasticsearch" in parts:
        set_up_elasticsearch(os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200"))
    if "kibana" in parts:
        set_up_kibana(os.environ.get("KIBANA_URL", "http://kibana:5601"))
    return 0


def set_up_elasticsearch(es: str) -> None:
    """Install the ILM policy, and the index template if it differs from the installed one."""
    es = es.rstrip("/")
    wait_for(f"{es}/_cluster/health?wait_for_status=yellow&timeout=5s")
    put_file(f"{es}/_ilm/policy/{NAME}", HERE / "elasticsearch" / "ilm-policy.json")
    template_file = HERE / "elasticsearch" / "index-template.json"
    digest = hashlib.sha256(template_file.read_bytes()).hexdigest()
    if _installed_template_digest(es) == digest:
        print(f"elk-setup: template {NAME} is up to date")
        return
    template = json.loads(template_file.read_bytes())
    template["_meta"] = {**template.get("_meta", {}), "source_sha256": digest}
    body = json.dumps(template).encode()
    request("PUT", f"{es}/_index_template/{NAME}", body, {"Content-Type": "application/json"})
    # An existing data stream takes a changed template at its next backing index: start one.
    request("POST", f"{es}/{DATA_STREAM}/_rollover", allow=(404,))
    print(f"elk-setup: template {NAME} installed")


def _installed_template_digest(es: str) -> str | None:
    answer = json.loads(request("GET", f"{es}/_index_template/{NAME}", allow=(404,)) or b"{}")
    for item in answer.get("index_templates", []):
        return item.get("index_template", {}).get("_meta", {}).get("source_sha256")
    return None


def set_up_kibana(kibana: str) -> None:
    """Import the saved objects (overwriting) and make the data view the default."""
    kibana = kibana.rstrip("/")
    wait_for(f"{kibana}/api/status", ready=_kibana_available)
    imported = import_saved_objects(kibana, HERE / "kibana" / "saved-objects.ndjson")
    body = json.dumps({"data_view_id": DATA_VIEW_ID, "force": True}).encode()
    request("POST", f"{kibana}/api/data_views/default", body, _kibana_headers("application/json"))
    print(f"elk-setup: {imported} Kibana objects imported")


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    allow: tuple[int, ...] = (),
) -> bytes:
    """Send one request; return the body, or raise unless the status is 2xx or in ``allow``."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in allow:
            return exc.read()
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc


def wait_for(url: str, ready: Callable[[bytes], bool] = lambda body: True) -> None:
    """Poll ``url`` until it answers 2xx and ``ready`` accepts the body."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            if ready(request("GET", url)):
                return
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {WAIT_SECONDS:.0f} s: {exc}") from exc
        time.sleep(2)


def put_file(url: str, path: Path) -> None:
    """PUT the JSON document in ``path`` to ``url``."""
    request("PUT", url, path.read_bytes(), {"Content-Type": "application/json"})


def import_saved_objects(kibana: str, path: Path) -> int:
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
    url = f"{kibana}/api/saved_objects/_import?overwrite=true"
    result = json.loads(request("POST", url, body, headers))
    if not result.get("success"):
        raise RuntimeError(f"Kibana refused some saved objects: {result.get('errors')}")
    return int(result.get("successCount", 0))


def _kibana_headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "kbn-xsrf": "elk-setup"}


def _kibana_available(body: bytes) -> bool:
    return json.loads(body)["status"]["overall"]["level"] == "available"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
