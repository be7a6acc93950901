"""The deployment files are valid and agree with the code.

Compose against the Compose spec, the Dockerfiles by hadolint, the nginx configuration by nginx
itself; every FITNESS_* variable compose sets is one the service reads, and every setting a
service needs in production is set, pointing at services that exist. The edge: the real nginx
runs deploy/nginx.conf with the certificate edge-tls-init makes, in front of stand-in gateways
found through a stand-in DNS server. The hardening: networks per tier, who may reach whom,
non-root read-only containers, authentication on every store, pinned images.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from deploy import make_secrets
from fitness import edge_tls
from fitness.config import COMMON_DEFAULTS, ENV_PREFIX, FILE_SUFFIX
from fitness.imports import MAX_UPLOAD_BYTES
from tests.support import REPO_ROOT
from tests.support.client import wait_until
from tests.support.deployment import EVERY_PROCESS, NEEDS, OUR_IMAGES, compose_file
from tests.support.stack import free_port
from tests.support.system_packages import require

ROOT = REPO_ROOT
BIN = Path(sys.executable).parent
SECRETS_DIR = "/run/secrets/"


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _compose() -> dict:
    return compose_file()


def _our_processes() -> dict[str, tuple[str, dict[str, str]]]:
    """Return {compose service: ("<package> <command>", FITNESS_* settings)} for our image."""
    processes = {}
    for name, service in _compose()["services"].items():
        command = service.get("command", [])
        if service.get("image") not in OUR_IMAGES or command[:2] != ["python", "-m"]:
            continue
        if command[2] in ("fitness.mtls", "fitness.edge_tls"):
            continue  # tls-init, edge-tls-init: one-shots that read no settings (checked below)
        env = service.get("environment", {})
        # FITNESS_X_FILE gives setting X from a file (fitness/config.py).
        settings = {
            k.removeprefix(ENV_PREFIX).removesuffix(FILE_SUFFIX): str(v) for k, v in env.items()
        }
        processes[name] = (f"{command[2]} {command[3]}", settings)
    return processes


def _reads(package: str) -> set[str]:
    return set(COMMON_DEFAULTS) | set(importlib.import_module(package).DEFAULTS)


def test_it_validates_compose_against_the_compose_spec():
    result = _run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "docker-compose.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/patroni/Dockerfile"])
def test_it_lints_the_dockerfiles_clean(dockerfile):
    result = _run(str(BIN / "hadolint"), dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_every_process_of_ours_in_compose():
    assert sorted(kind for kind, _ in _our_processes().values()) == sorted(
        ["user_service serve"] * 2
        + ["activity_service serve"] * 2
        + ["gateway serve"] * 2
        + ["user_service migrate", "etl schedule"]
    )


# Read by the runtime, not by our settings: the ETL's time zone, where temporary files go.
RUNTIME_VARIABLES = {"TZ", "TMPDIR"}


def test_it_sets_only_variables_the_services_read():
    for name, (kind, settings) in _our_processes().items():
        env = _compose()["services"][name]["environment"]
        assert all(key.startswith(ENV_PREFIX) or key in RUNTIME_VARIABLES for key in env), name
        unknown = set(settings) - _reads(kind.split()[0]) - RUNTIME_VARIABLES
        assert not unknown, f"{name} sets FITNESS_ variables nothing reads: {sorted(unknown)}"


def test_it_gives_every_process_what_it_needs_in_production():
    for name, (kind, settings) in _our_processes().items():
        missing = (EVERY_PROCESS | NEEDS[kind]) - set(settings)
        assert not missing, f"{name} ({kind}) lacks {sorted(missing)}"
        assert settings["ENV"] == "production"
        for key, value in settings.items():
            if key.endswith(("PASSWORD", "SECRET")):
                assert value.startswith(SECRETS_DIR), f"{name}: {key} is not a secret file"


def test_it_points_every_address_at_a_service_of_compose():
    services = _compose()["services"]
    for name, (_, settings) in _our_processes().items():
        for key, value in settings.items():
            for host, port in _addresses(key, value):
                assert host in services, f"{name}: {key} names {host}, not a compose service"
                assert port is None or _listens(services[host], port), f"{name}: {host}:{port}"


def test_it_reaches_the_stores_through_their_failover_machinery():
    _, user = _our_processes()["user_service_1"]
    database = urlsplit(_without_placeholders(user["DATABASE_URL"]))
    query = parse_qs(database.query)
    assert database.scheme == "postgresql+psycopg2"
    assert query["target_session_attrs"] == ["read-write"]
    assert query["host"] == ["pg1:5432", "pg2:5432", "pg3:5432"]
    _, gateway = _our_processes()["gateway_1"]
    assert gateway["STATE_REDIS_URL"].startswith("redis+sentinel://gateway@")
    # The same Sentinels and primary, each logged in as its own ACL user.
    assert user["STATE_REDIS_URL"] == gateway["STATE_REDIS_URL"].replace(
        "gateway@", "user_service@"
    )
    _, activity = _our_processes()["activity_service_1"]
    assert "replicaSet=rs0" in activity["MONGO_URL"]


def test_it_keeps_each_process_log_queue_on_a_volume_of_its_own():
    services = _compose()["services"]
    mounts = {}
    for name in _our_processes():
        volumes = services[name].get("volumes", [])
        mounts[name] = [v.split(":")[0] for v in volumes if v.endswith(":/var/lib/fitness")]
    assert all(len(found) == 1 for found in mounts.values()), mounts
    assert len({found[0] for found in mounts.values()}) == len(mounts)


def test_every_grpc_process_gets_the_certificates_tls_init_makes():
    services = _compose()["services"]
    assert services["tls-init"]["command"][2:] == ["fitness.mtls", "/var/lib/fitness-tls"]
    for name, (kind, settings) in _our_processes().items():
        if kind not in {"user_service serve", "activity_service serve", "gateway serve"}:
            continue
        assert settings["TLS_DIR"] == "/var/lib/fitness-tls", name
        assert "tls:/var/lib/fitness-tls:ro" in services[name]["volumes"], name
        ready = services[name]["depends_on"]["tls-init"]["condition"]
        assert ready == "service_completed_successfully", name


def _mounted_secrets(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def test_no_password_or_key_is_written_in_compose_or_passed_through_the_environment():
    text = (ROOT / "docker-compose.yml").read_text()
    # From the shell's environment (.env) only the few settings .env.example lists, none secret.
    for variable in re.findall(r"\$\{(\w+)", text):
        assert not re.search(r"PASSWORD|SECRET|KEY|TOKEN", variable), variable
    for name, service in _compose()["services"].items():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|_KEY\b", key):
                assert key.endswith(FILE_SUFFIX), f"{name}: {key} holds a secret itself"
                assert str(value).startswith(SECRETS_DIR), f"{name}: {key}={value}"
            for url in str(value).split(","):
                assert urlsplit(url).password is None, f"{name}: {key} has a password in it"


def test_each_secret_is_mounted_only_where_it_is_used_and_make_secrets_makes_it(tmp_path):
    compose = _compose()
    made = set(make_secrets.ensure(tmp_path))
    derived = set(make_secrets.redis_files(tmp_path))
    declared = compose["secrets"]
    for name, source in declared.items():
        file = Path(source["file"])
        assert file.parent == Path("deploy/secrets"), name
        assert file.name in made | derived, f"{name}: make secrets does not make {file.name}"
    used_anywhere = set()
    for name, service in compose["services"].items():
        mounted = _mounted_secrets(service)
        assert mounted <= set(declared), name
        text = _what_reads_secrets(service, tmp_path)
        for secret in mounted:
            assert SECRETS_DIR + secret in text, f"{name} mounts {secret} but never reads it"
        for read in re.findall(re.escape(SECRETS_DIR) + r"(\w+)", text):
            assert read in mounted, f"{name} reads {read} without mounting it"
        used_anywhere |= mounted
    assert used_anywhere == set(declared)


def _what_reads_secrets(service: dict, secrets_dir: Path) -> str:
    """Return the text of everything in ``service`` that names files under /run/secrets.

    Its compose definition (commands, environment), the scripts of its image (Patroni's), and the
    derived configuration files it mounts (a state server's names the ACL file it loads).
    """
    text = yaml.safe_dump({k: v for k, v in service.items() if k != "secrets"})
    if service.get("build") == "deploy/patroni":
        for script in sorted((ROOT / "deploy/patroni").glob("*.sh")):
            text += _with_default_secrets_dir(script.read_text())
    files = {name: Path(src["file"]).name for name, src in _compose()["secrets"].items()}
    derived = make_secrets.redis_files(secrets_dir)
    for secret in _mounted_secrets(service):
        text += derived.get(files[secret], "")
    return text


def _with_default_secrets_dir(script: str) -> str:
    """Return ``script`` with ``$SECRETS_DIR/`` spelled out where it defaults to /run/secrets.

    (post_bootstrap.sh reads its files from SECRETS_DIR, so the local Patroni cluster of the
    failover test can point it elsewhere.)
    """
    if "SECRETS_DIR=${SECRETS_DIR:-/run/secrets}" not in script:
        return script
    return re.sub(r"\$\{?SECRETS_DIR\}?/", SECRETS_DIR, script)


def test_make_secrets_makes_each_once_and_keeps_them_to_the_owner(tmp_path):
    first = make_secrets.ensure(tmp_path / "s")
    assert "jwt_secret" in first and "mongo_keyfile" in first
    before = {p.name: p.read_text() for p in (tmp_path / "s").iterdir()}
    assert make_secrets.ensure(tmp_path / "s") == []
    assert {p.name: p.read_text() for p in (tmp_path / "s").iterdir()} == before
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == oct(0o700)
    passwords = [v for k, v in before.items() if k.endswith(("_password", "_secret"))]
    assert len(set(passwords)) == len(passwords), "one password per purpose"
    for acl in ("redis_cache.acl", "redis_state.acl"):
        assert not any(p in before[acl] for p in passwords), "the ACL files hold digests only"
    keyfile = before["mongo_keyfile"]
    assert 6 <= len(keyfile) <= 1024 and re.fullmatch(r"[A-Za-z0-9+/=]+", keyfile)


def _addresses(key: str, value: str) -> list[tuple[str, int | None]]:
    """Return the (host, port) pairs a setting names: URLs, URL lists, host:port lists."""
    value = _without_placeholders(value)
    if key == "LOGSTASH_HOST":
        return [(value, None)]
    if not key.endswith(("_URL", "_URLS", "_REPLICAS", "_TARGETS")):
        return []
    pairs = []
    for item in value.split(","):
        parts = urlsplit(item if "://" in item else f"tcp://{item}")
        netlocs = [parts.netloc.rpartition("@")[2], *parse_qs(parts.query).get("host", [])]
        for netloc in filter(None, netlocs):
            host, _, port = netloc.partition(":")
            pairs.append((host, int(port) if port else None))
    return pairs


def _without_placeholders(value: str) -> str:
    """Replace compose's ``${VAR:?message}`` (which holds a "?" and a ":") by a plain word."""
    return re.sub(r"\$\{[^}]*\}", "secret", value)


def _listens(service: dict, port: int) -> bool:
    """Return True unless ``service`` is one of ours and ``port`` is not one of its ports."""
    if service.get("image") not in OUR_IMAGES:
        return True  # a server image on its usual port; its own healthcheck proves it listens
    env = service.get("environment", {})
    return str(port) in (env.get("FITNESS_HTTP_PORT"), env.get("FITNESS_GRPC_PORT"))


ONE_SHOT = {"tls-init", "edge-tls-init", "migrate", "mongo-init", "es-setup", "kibana-setup"}


def _gib(size: str) -> float:
    number, unit = float(size[:-1]), size[-1].upper()
    return number / 1024 if unit == "M" else number


def test_every_service_is_sized_and_rotated_and_the_readme_gives_the_host_they_need():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= set(limits), f"{name} has no CPU or memory limit"
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert {"max-size", "max-file"} <= set(logging.get("options", {})), name
    total = sum(
        _gib(s["deploy"]["resources"]["limits"]["memory"])
        for name, s in services.items()
        if name not in ONE_SHOT
    )
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert f"limits add up to {total:.1f} GiB" in guide
    needed = int(total) + 1
    assert f"Minimum host: {needed} GiB of memory" in guide


def test_what_runs_inside_is_sized_from_its_limit():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    def limit(name: str) -> float:
        return _gib(services[name]["deploy"]["resources"]["limits"]["memory"])

    for mongo in ("mongo1", "mongo2", "mongo3"):
        command = " ".join(services[mongo]["command"])
        cache = float(re.search(r"--wiredTigerCacheSizeGB ([\d.]+)", command)[1])
        assert cache <= max(0.25, 0.5 * (limit(mongo) - 1)), mongo
    for name, variable in (("elasticsearch", "ES_JAVA_OPTS"), ("logstash", "LS_JAVA_OPTS")):
        heap = re.search(r"-Xmx(\d+)([mg])", services[name]["environment"][variable])
        heap_gib = int(heap[1]) / (1 if heap[2] == "g" else 1024)
        assert heap_gib <= limit(name) / 2, name
    node = re.search(
        r"--max-old-space-size=(\d+)", services["kibana"]["environment"]["NODE_OPTIONS"]
    )
    assert int(node[1]) / 1024 <= limit("kibana") / 2
    for state in ("state_redis_1", "state_redis_2"):
        command = " ".join(services[state]["command"])
        assert "--maxmemory-policy noeviction" in command
        assert int(re.search(r"--maxmemory (\d+)mb", command)[1]) / 1024 < limit(state)


def test_env_example_lists_exactly_the_variables_compose_reads_with_their_defaults():
    compose = (ROOT / "docker-compose.yml").read_text()
    used = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", compose))
    assert set(re.findall(r"\$\{(\w+)", compose)) == set(used), "a variable without a default"
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    assert example == used


# --- the edge: nginx with TLS in front of stand-in gateways --------------------------------------
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# What the tests put in place of what only exists inside compose: each must be in the config.
COMPOSE_ONLY = {
    "listen 8080;": "listen 127.0.0.1:{http};",
    "listen 8443 ssl;": "listen 127.0.0.1:{https} ssl;",
    "resolver 127.0.0.11 valid=10s ipv6=off;": "resolver 127.0.0.1:{dns} valid=1s ipv6=off;",
    "set $gateway http://gateway:8080;": "set $gateway http://gateway:{gateway};",
    "/etc/nginx/tls/": "{tls}/",
}
GATEWAY_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def _nginx_conf(tmp_path: Path, **places: object) -> Path:
    """Write deploy/nginx.conf with compose's names and ports replaced by ``places``."""
    conf = NGINX_CONF.read_text().replace("/tmp/", f"{tmp_path}/")
    for original, local in COMPOSE_ONLY.items():
        assert original in conf, f"deploy/nginx.conf no longer has {original!r}"
        conf = conf.replace(original, local.format(**places))
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    return path


def _certificate(tmp_path: Path) -> Path:
    """Make the certificate as edge-tls-init does; return its directory."""
    assert edge_tls.ensure(tmp_path / "tls", list(edge_tls.DEFAULT_NAMES))
    return tmp_path / "tls"


def test_it_accepts_the_nginx_configuration(tmp_path):
    nginx = require("/usr/sbin/nginx", "nginx")
    ports = dict(http=8080, https=8443, dns=53, gateway=8080)
    conf = _nginx_conf(tmp_path, tls=_certificate(tmp_path), **ports)
    result = _run(str(nginx), "-t", "-p", str(tmp_path), "-c", str(conf))
    assert result.returncode == 0, result.stdout + result.stderr


class _Gateway(http.server.BaseHTTPRequestHandler):
    """A stand-in gateway: remembers who got each request and its headers; echoes a WebSocket."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.server.server_address[0], dict(self.headers)))
        if self.headers.get("Upgrade") == "websocket":
            return self._switch_and_echo()
        self.send_response(200)
        # As a gateway with FITNESS_HSTS_SECONDS set would: nginx must not pass it on.
        self.send_header("Strict-Transport-Security", "max-age=60")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def _switch_and_echo(self) -> None:
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.wfile.write(self.rfile.readline())  # one line back, through the tunnel
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *_args) -> None:
        pass


class _Dns:
    """A DNS server on UDP that answers A queries for "gateway" with ``addresses``."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, client = self.socket.recvfrom(512)
            except OSError:
                return  # closed
            self.socket.sendto(self._answer(query), client)

    def _answer(self, query: bytes) -> bytes:
        end, labels = 12, []
        while query[end]:
            labels.append(query[end + 1 : end + 1 + query[end]].decode())
            end += query[end] + 1
        question = query[12 : end + 5]
        is_a = query[end + 1 : end + 3] == b"\x00\x01"
        found = self.addresses if labels == ["gateway"] and is_a else []
        flags = b"\x81\x80" if labels == ["gateway"] else b"\x81\x83"  # NXDOMAIN otherwise
        header = query[:2] + flags + b"\x00\x01" + len(found).to_bytes(2, "big") + b"\x00" * 4
        answers = b"".join(
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x01\x00\x04" + socket.inet_aton(address)
            for address in found
        )
        return header + question + answers

    def close(self) -> None:
        self.socket.close()


@dataclass
class Edge:
    """nginx from deploy/nginx.conf: its two addresses, the certificate to trust, its DNS."""

    https: str
    http: str
    certificate: Path
    dns: _Dns

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(f"{self.https}{path}", verify=self.certificate, timeout=10, **kwargs)

    def reached(self) -> list[str]:
        """Return which stand-in gateway got each request so far."""
        return [address for address, _ in _Gateway.seen]


@contextlib.contextmanager
def _edge(tmp_path: Path) -> Iterator[Edge]:
    """Run deploy/nginx.conf with a throwaway certificate; "gateway" resolves to 127.0.0.1 and
    127.0.0.2 (a stand-in gateway on each, and one on 127.0.0.3, unnamed for now)."""
    nginx = require("/usr/sbin/nginx", "nginx")
    first = http.server.ThreadingHTTPServer((GATEWAY_ADDRESSES[0], 0), _Gateway)
    port = first.server_address[1]
    stubs = [first] + [
        http.server.ThreadingHTTPServer((address, port), _Gateway)
        for address in GATEWAY_ADDRESSES[1:]
    ]
    for stub in stubs:
        threading.Thread(target=stub.serve_forever, daemon=True).start()
    dns = _Dns(list(GATEWAY_ADDRESSES[:2]))
    http_port, https_port = free_port(), free_port()
    tls = _certificate(tmp_path)
    places = dict(http=http_port, https=https_port, dns=dns.port, gateway=port, tls=tls)
    conf = _nginx_conf(tmp_path, **places)
    command = [str(nginx), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        edge = Edge(
            f"https://127.0.0.1:{https_port}",
            f"http://127.0.0.1:{http_port}",
            tls / edge_tls.CERTIFICATE,
            dns,
        )
        assert wait_until(lambda: _answers(f"{edge.http}/nginx-health"), timeout=10)
        _Gateway.seen.clear()
        yield edge
    finally:
        server.terminate()
        server.wait(timeout=10)
        dns.close()
        for stub in stubs:
            stub.shutdown()
            stub.server_close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_nginx_serves_https_and_sends_plain_http_there(tmp_path):
    with _edge(tmp_path) as edge:
        served = edge.get("/users/u-1/goals?status=active")
        redirected = requests.get(
            f"{edge.http}/users/u-1/goals?status=active", allow_redirects=False, timeout=5
        )
        health = requests.get(f"{edge.http}/nginx-health", timeout=5)
    assert served.status_code == 200
    assert redirected.status_code == 301
    assert redirected.headers["Location"] == "https://127.0.0.1/users/u-1/goals?status=active"
    assert health.status_code == 200  # the health check stays on plain HTTP
    [(_, headers)] = _Gateway.seen  # the redirect never reached a gateway
    assert headers["X-Forwarded-Proto"] == "https"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_nginx_speaks_tls_1_2_and_1_3_with_the_certificate_edge_tls_init_makes(tmp_path, version):
    with _edge(tmp_path) as edge:
        context = ssl.create_default_context(cafile=str(edge.certificate))
        context.minimum_version = context.maximum_version = version
        address = urlsplit(edge.https)
        with (
            socket.create_connection((address.hostname, address.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == version.name.replace("_", ".")
    conf = NGINX_CONF.read_text()
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;$", conf, re.MULTILINE)


def test_hsts_is_sent_once_over_https_and_never_over_plain_http(tmp_path):
    with _edge(tmp_path) as edge:
        proxied = edge.get("/users/u-1")
        edge.dns.addresses = ["127.0.0.9"]  # nobody there: nginx answers 502 itself
        assert wait_until(lambda: edge.get("/users/u-1").status_code == 502, timeout=10)
        own_error = edge.get("/users/u-1")
        redirect = requests.get(f"{edge.http}/users/u-1", allow_redirects=False, timeout=5)
    for answer in (proxied, own_error):
        # The gateway's own header (max-age=60) is dropped; nginx's goes out once.
        assert answer.raw.headers.getlist("Strict-Transport-Security") == ["max-age=63072000"]
    assert "Strict-Transport-Security" not in redirect.headers
    compose = _compose()["services"]
    assert not any("FITNESS_HSTS_SECONDS" in s.get("environment", {}) for s in compose.values())


def test_nginx_spreads_requests_over_the_gateways_and_finds_a_recreated_one(tmp_path):
    with _edge(tmp_path) as edge:
        assert all(edge.get(f"/users/u-{n}").status_code == 200 for n in range(30))
        spread = Counter(edge.reached())
        # A gateway recreated with a new address: nginx asks the DNS again (valid=1s here).
        edge.dns.addresses = ["127.0.0.3"]
        assert wait_until(lambda: edge.get("/users/u-1") and edge.reached()[-1] == "127.0.0.3")
        _Gateway.seen.clear()
        assert all(edge.get(f"/users/u-{n}").status_code == 200 for n in range(10))
        after = set(edge.reached())
    assert set(spread) == {"127.0.0.1", "127.0.0.2"} and min(spread.values()) >= 3, spread
    assert after == {"127.0.0.3"}


def test_nginx_resolves_the_gateways_by_name_at_run_time():
    conf = NGINX_CONF.read_text()
    # An upstream block resolves its servers once, at start.
    assert not re.search(r"^\s*upstream\s", conf, re.MULTILINE)
    assert set(re.findall(r"proxy_pass (\S+);", conf)) == {"$gateway"}
    [(host, port)] = re.findall(r"set \$gateway http://([\w-]+):(\d+);", conf)
    services = _compose()["services"]
    named = [n for n, s in services.items() if host in _aliases(s, _networks(services["nginx"]))]
    assert sorted(named) == ["gateway_1", "gateway_2"]
    assert all(services[n]["environment"]["FITNESS_HTTP_PORT"] == port for n in named)


def test_nginx_tunnels_websockets_over_tls(tmp_path):
    with _edge(tmp_path) as edge:
        context = ssl.create_default_context(cafile=str(edge.certificate))
        address = urlsplit(edge.https)
        with (
            socket.create_connection((address.hostname, address.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(
                b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            reader = tls.makefile("rb")
            status = reader.readline()
            while reader.readline() not in (b"\r\n", b""):
                pass
            tls.sendall(b"ping\n")
            echoed = reader.readline()
    assert status.startswith(b"HTTP/1.1 101"), status
    assert echoed == b"ping\n"


def test_nginx_takes_workout_files_up_to_the_gateways_limit_and_other_bodies_to_1m(tmp_path):
    conf = NGINX_CONF.read_text()
    imports = conf[conf.index("location ~ ^/users/[^/]+/imports$") :]
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", imports).group(1))
    assert 0 < megabytes * 2**20 - MAX_UPLOAD_BYTES <= 2**20  # the gateway's, and the framing
    with _edge(tmp_path) as edge:
        upload = requests.post(
            f"{edge.https}/users/u-1/imports",
            data=b"x" * 40 * 2**20,
            verify=edge.certificate,
            timeout=20,
        )
        other = requests.post(
            f"{edge.https}/users/register", data=b"x" * 2 * 2**20, verify=edge.certificate
        )
    assert upload.status_code == 200  # reached the gateway, which decides
    assert other.status_code == 413


@pytest.mark.parametrize("path", ["/users/login", "/ws"])
def test_nginx_sends_the_address_it_saw_whatever_the_client_claims(tmp_path, path):
    with _edge(tmp_path) as edge:
        claimed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "http"}
        sent = edge.get(path, headers=claimed)

    assert sent.status_code == 200
    [(_, headers)] = _Gateway.seen
    assert headers["X-Forwarded-For"] == "127.0.0.1"  # what nginx saw, not 6.6.6.6
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["Host"] == "127.0.0.1"  # the client's, not the upstream's name
    assert headers["X-Request-ID"]


def test_nginx_serves_the_certificate_edge_tls_init_writes_and_waits_for_it():
    services = _compose()["services"]
    nginx, init = services["nginx"], services["edge-tls-init"]
    conf = NGINX_CONF.read_text()
    [certificate] = re.findall(r"ssl_certificate (\S+);", conf)
    [key] = re.findall(r"ssl_certificate_key (\S+);", conf)
    directory = str(Path(certificate).parent)
    assert (certificate, key) == (
        f"{directory}/{edge_tls.CERTIFICATE}",
        f"{directory}/{edge_tls.KEY}",
    )
    [source] = [m[0] for m in _mounts(nginx) if m[1:] == [directory, "ro"]]
    [written] = [m[1] for m in _mounts(init) if m[0] == source]
    # From our image (no file mounted from the host, which could differ from the image's code).
    assert init["command"][:4] == ["python", "-m", "fitness.edge_tls", written]
    assert all(not m[0].startswith("./") for m in _mounts(init))
    assert nginx["depends_on"]["edge-tls-init"]["condition"] == "service_completed_successfully"
    # The key is 0640, its group the one edge-tls-init runs with: nginx's.
    assert init["user"].split(":")[1] == nginx["user"].split(":")[1]
    targets = {port.rsplit(":", 1)[1]: port.split(":")[0] for port in nginx["ports"]}
    assert set(re.findall(r"listen (\d+)( ssl)?;", conf)) == {("8080", ""), ("8443", " ssl")}
    assert targets == {"8443": "${FITNESS_HTTPS_PUBLISH", "8080": "${FITNESS_HTTP_PUBLISH"}


def _mounts(service: dict) -> list[list[str]]:
    """Return each volume of ``service`` as [source, target, mode...], placeholders resolved to
    their defaults (``${FITNESS_EDGE_TLS_DIR:-edge-tls}`` is the volume edge-tls)."""
    return [
        re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", volume).split(":")
        for volume in service.get("volumes", [])
    ]


def test_edge_tls_init_keeps_a_certificate_of_your_own_and_refuses_half_of_one(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / edge_tls.CERTIFICATE).write_text("yours")
    with pytest.raises(edge_tls.HalfACertificate):
        edge_tls.ensure(own, ["example.com"])
    (own / edge_tls.KEY).write_text("yours too")
    assert not edge_tls.ensure(own, ["example.com"])
    assert (own / edge_tls.CERTIFICATE).read_text() == "yours"
    made = _certificate(tmp_path)
    assert oct((made / edge_tls.KEY).stat().st_mode & 0o777) == oct(0o640)


# --- networks: who may reach whom ----------------------------------------------------------------
# The only networks with a way out: where the published ports are, each for one service.
PUBLISHED = {"edge": "nginx", "admin": "kibana"}
ETCD = {"etcd1", "etcd2", "etcd3"}
PATRONI = {"pg1", "pg2", "pg3"}
GATEWAYS = {"gateway_1", "gateway_2"}
# What a gateway (the process the internet talks to) must never reach.
BACK_OFFICE = ETCD | PATRONI | {"mongo1", "mongo2", "mongo3", "warehouse-db", "elasticsearch"}


def _networks(service: dict) -> set[str]:
    return set(service.get("networks", []))  # a list, or a mapping of network: settings


def _aliases(service: dict, networks: set[str]) -> set[str]:
    """Return the names ``service`` answers to on any of ``networks``."""
    declared = service.get("networks", [])
    if not isinstance(declared, dict):
        return set()
    return {
        alias
        for network, settings in declared.items()
        if network in networks
        for alias in (settings or {}).get("aliases", [])
    }


def _reachable(name: str) -> set[str]:
    """Return the services ``name`` shares a network with."""
    services = _compose()["services"]
    mine = _networks(services[name])
    return {other for other, s in services.items() if other != name and mine & _networks(s)}


def test_every_container_is_on_named_networks_or_none():
    compose = _compose()
    declared = set(compose["networks"])
    for name, service in compose["services"].items():
        if service.get("network_mode") == "none":
            assert "networks" not in service and "ports" not in service, name
            continue
        assert _networks(service), f"{name} would be on the default network, with everything"
        assert _networks(service) <= declared, name


def test_back_networks_are_internal_and_only_the_published_services_have_a_way_out():
    compose = _compose()
    for network, settings in compose["networks"].items():
        internal = (settings or {}).get("internal", False)
        assert internal == (network not in PUBLISHED), network
    for name, service in compose["services"].items():
        outside = _networks(service) & set(PUBLISHED)
        assert outside == {n for n, owner in PUBLISHED.items() if owner == name}, name
        assert ("ports" in service) == bool(outside), f"{name}: a port needs a way out"


def test_a_gateway_reaches_no_database_etcd_patroni_or_elasticsearch():
    for gateway in GATEWAYS:
        assert not _reachable(gateway) & BACK_OFFICE, sorted(_reachable(gateway) & BACK_OFFICE)
    assert _reachable("nginx") == GATEWAYS  # and nginx only the gateways


def test_etcd_is_isolated_with_the_patroni_nodes_that_hold_its_lock():
    services = _compose()["services"]
    for node in ETCD:
        assert _reachable(node) == (ETCD | PATRONI) - {node}
        assert "ports" not in services[node]
    # Patroni's own etcd hosts are the ones there.
    hosts = yaml.safe_load((ROOT / "deploy/patroni/patroni.yml").read_text())["etcd3"]["hosts"]
    assert {host.split(":")[0] for host in hosts.split(",")} == ETCD


def test_every_process_shares_a_network_with_every_address_it_is_given():
    services = _compose()["services"]
    for name, (_, settings) in _our_processes().items():
        for key, value in settings.items():
            for host, _ in _addresses(key, value):
                assert host in _reachable(name) | {name}, f"{name} cannot reach {host} ({key})"
    for name, host in _addresses_of_the_rest(services):
        assert host in _reachable(name), f"{name} cannot reach {host}"


def _addresses_of_the_rest(services: dict) -> list[tuple[str, str]]:
    """Return (service, host it calls) for what is not a process of ours."""
    kibana = yaml.safe_load((ROOT / "elk/kibana/kibana.yml").read_text())
    patroni = yaml.safe_load((ROOT / "deploy/patroni/patroni.yml").read_text())
    pairs = [("kibana", urlsplit(url).hostname) for url in kibana["elasticsearch.hosts"]]
    pairs += [
        (node, h.split(":")[0]) for node in PATRONI for h in patroni["etcd3"]["hosts"].split(",")
    ]
    pairs += [("mongo-init", services["mongo-init"]["command"][2].split(":")[0])]
    for name in ("logstash", "es-setup", "kibana-setup"):
        env = services[name]["environment"]
        pairs += [(name, urlsplit(env[k]).hostname) for k in env if k.endswith("_URL")]
    for sentinel in ("sentinel_1", "sentinel_2", "sentinel_3"):
        script = " ".join(services[sentinel]["command"])
        pairs.append((sentinel, re.search(r"sentinel monitor state (\S+)", script)[1]))
    return pairs


# --- containers: no privileges, non-root, read-only ----------------------------------------------
# Where a container keeps root or a writable root filesystem, and why (docs/deployment.md says it
# too, "Containers").
RUNS_AS_ROOT = {
    name: "the etcd image has no other user, and its fresh volume would be root's" for name in ETCD
}
WRITABLE_ROOT = {
    "elasticsearch": "writes its keystore (the bootstrap password) into its config at start",
    "logstash": "writes logstash.yml from the environment at start",
    "kibana": "writes its data directory and UUID under /usr/share/kibana",
}


def test_every_container_runs_without_new_privileges_or_capabilities():
    for name, service in _compose()["services"].items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("cap_drop") == ["ALL"] and "cap_add" not in service, name
        assert not service.get("privileged"), name


def test_every_container_runs_as_a_user_of_its_own_except_etcd():
    for name, service in _compose()["services"].items():
        user = str(service.get("user", ""))
        if name in RUNS_AS_ROOT:
            assert not user, name
            continue
        assert re.fullmatch(r"\d+:\d+", user), f"{name} runs as {user or 'the image default'}"
        assert not user.startswith("0:"), f"{name} runs as root"


def test_root_filesystems_are_read_only_except_the_elastic_stacks():
    for name, service in _compose()["services"].items():
        assert service.get("read_only", False) == (name not in WRITABLE_ROOT), name


# --- authentication --------------------------------------------------------------------------
def _reads_secret_into(text: str, variable: str) -> str | None:
    """Return the secret file a start command reads into ``variable`` (VAR="$(cat FILE)")."""
    found = re.search(rf'{variable}="?\$\$?\(cat ([^)]+)\)', text)
    return found[1] if found else None


def test_elasticsearch_runs_with_security_on_and_each_client_logs_in_from_a_secret():
    services = _compose()["services"]
    es = services["elasticsearch"]
    assert es["environment"]["xpack.security.enabled"] == "true"
    assert es["environment"]["ELASTIC_PASSWORD_FILE"] == SECRETS_DIR + "elastic_password"
    assert SECRETS_DIR + "elastic_password" in " ".join(es["healthcheck"]["test"])
    # Logstash: its own user, the password from its secret into the variable the pipeline reads.
    pipeline = (ROOT / "elk/logstash/pipeline/fitness.conf").read_text()
    output = pipeline[pipeline.index("output {") :]
    assert re.search(r'user => "fitness_logstash"', output)
    [variable] = re.findall(r'password => "\$\{(\w+)\}"', output)
    secret = _reads_secret_into(" ".join(services["logstash"]["entrypoint"]), variable)
    setup = services["es-setup"]["environment"]
    assert secret == setup["LOGSTASH_PASSWORD_FILE"] == SECRETS_DIR + "es_logstash_password"
    # Kibana: the service token es-setup writes, and no user or password of its own.
    kibana = yaml.safe_load((ROOT / "elk/kibana/kibana.yml").read_text())
    assert not {"elasticsearch.username", "elasticsearch.password"} & set(kibana)
    [variable] = re.findall(r"\$\{(\w+)\}", kibana["elasticsearch.serviceAccountToken"])
    token = _reads_secret_into(" ".join(services["kibana"]["command"]), variable)
    assert _same_file(services["kibana"], token, services["es-setup"], setup["KIBANA_TOKEN_FILE"])
    assert services["kibana"]["depends_on"]["es-setup"]["condition"] == (
        "service_completed_successfully"
    )
    # The token file is 0640: its group (es-setup's) is Kibana's.
    assert services["es-setup"]["user"].split(":")[1] == services["kibana"]["user"].split(":")[1]
    for job in ("es-setup", "kibana-setup"):
        assert (
            services[job]["environment"]["ELASTIC_PASSWORD_FILE"]
            == es["environment"]["ELASTIC_PASSWORD_FILE"]
        )


def _same_file(reader: dict, path: str, writer: dict, written: str) -> bool:
    """Tell whether ``path`` in ``reader`` is ``written`` in ``writer``, through one volume,
    mounted read-only in the reader."""

    def volume(service: dict, file: str, suffix: str = "") -> str | None:
        for source, target, *mode in _mounts(service):
            if file.startswith(target + "/") and (not suffix or mode == [suffix]):
                return source + file.removeprefix(target)
        return None

    return volume(reader, path, "ro") == volume(writer, written) is not None


def test_patroni_asks_a_password_of_every_changing_rest_api_call():
    services = _compose()["services"]
    entrypoint = (ROOT / "deploy/patroni/entrypoint.sh").read_text()
    secret = _reads_secret_into(entrypoint, "PATRONI_RESTAPI_PASSWORD")
    assert secret == SECRETS_DIR + "patroni_restapi_password"
    for variable in ("PATRONI_RESTAPI_USERNAME", "PATRONI_RESTAPI_PASSWORD"):
        assert re.search(rf"^export .*\b{variable}\b", entrypoint, re.MULTILINE), variable
    assert re.search(r"^PATRONI_RESTAPI_USERNAME=\w+$", entrypoint, re.MULTILINE)
    for node in PATRONI:
        assert "patroni_restapi_password" in _mounted_secrets(services[node])
        assert services[node]["build"] == "deploy/patroni"  # the image whose entrypoint this is


def test_mongodb_and_redis_ask_everyone_to_log_in(tmp_path):
    services = _compose()["services"]
    for node in ("mongo1", "mongo2", "mongo3"):
        command = " ".join(services[node]["command"])
        assert "--keyFile" in command and "mongo_keyfile" in _mounted_secrets(services[node])
        assert "MONGO_INITDB_ROOT_PASSWORD_FILE" in services[node]["environment"]
    make_secrets.ensure(tmp_path)
    derived = make_secrets.redis_files(tmp_path)
    loads = {  # what each kind of Redis container loads, and where its users are
        "redis_cache_acl": derived["redis_cache.acl"],
        "redis_state_auth": derived["redis_state.acl"],  # redis_state_auth names the ACL file
        "sentinel_auth": derived["sentinel_auth.conf"],
    }
    assert "aclfile /run/secrets/redis_state_acl" in derived["redis_state_auth.conf"]
    for name, service in services.items():
        if not service["image"].startswith("redis:"):
            continue
        [secret] = [s for s in loads if SECRETS_DIR + s in " ".join(service["command"])]
        assert loads[secret].startswith("user default off\n"), name


# --- images ----------------------------------------------------------------------------------
# PostgreSQL numbers its releases major.minor since version 10: 16.4 is an exact version.
TWO_PART_VERSIONS = {"postgres"}


def test_every_image_is_pinned_to_an_exact_version_the_guide_lists():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for name, service in _compose()["services"].items():
        image = service["image"].partition("@sha256:")[0]  # a digest may follow the tag
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        if "build" in service:
            continue  # ours, built here
        exact = r"\d+\.\d+" if repository in TWO_PART_VERSIONS else r"v?\d+\.\d+\.\d+"
        assert re.fullmatch(exact + r"(-\w+)?", tag), f"{name}: {image} is not an exact version"
        assert f"`{image}`" in guide, f"{image} is missing from docs/deployment.md, Images"
