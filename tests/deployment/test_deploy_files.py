"""The deployment files are valid and agree with the code.

Compose against the Compose spec, the Dockerfiles by hadolint, the nginx configuration by nginx
itself; every FITNESS_* variable compose sets is one the service reads, and every setting a
service needs in production is set, pointing at services that exist.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from deploy import make_secrets
from fitness.config import COMMON_DEFAULTS, ENV_PREFIX, FILE_SUFFIX
from fitness.imports import MAX_UPLOAD_BYTES
from tests.support import REPO_ROOT
from tests.support.client import wait_until
from tests.support.stack import free_port
from tests.support.system_packages import require

ROOT = REPO_ROOT
BIN = Path(sys.executable).parent
OUR_IMAGE = "fitness-goal-tracker:local"
# What each of our processes must be given in production (beyond what every one gets).
EVERY_PROCESS = {"ENV", "LOGSTASH_HOST", "LOGSTASH_PORT"}
NEEDS = {
    "user_service serve": {
        "JWT_SECRET",
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "STATE_REDIS_URL",
        "STATE_REDIS_PASSWORD",
        "HTTP_PORT",
        "GRPC_PORT",
    },
    "user_service migrate": {"DATABASE_URL", "DATABASE_PASSWORD"},
    "activity_service serve": {
        "JWT_SECRET",
        "MONGO_URL",
        "MONGO_PASSWORD",
        "USER_GRPC_TARGETS",
        "HTTP_PORT",
        "GRPC_PORT",
    },
    "gateway serve": {
        "JWT_SECRET",
        "USER_HTTP_REPLICAS",
        "ACTIVITY_HTTP_REPLICAS",
        "USER_GRPC_TARGETS",
        "ACTIVITY_GRPC_TARGETS",
        "CACHE_REDIS_URLS",
        "CACHE_REDIS_PASSWORD",
        "STATE_REDIS_URL",
        "STATE_REDIS_PASSWORD",
        "TRUSTED_PROXY_HOPS",
        "HTTP_PORT",
    },
    "etl schedule": {
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "MONGO_URL",
        "MONGO_PASSWORD",
        "WAREHOUSE_URL",
        "WAREHOUSE_PASSWORD",
        "ETL_SCHEDULE",
    },
}
SECRETS_DIR = "/run/secrets/"


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _our_processes() -> dict[str, tuple[str, dict[str, str]]]:
    """Return {compose service: ("<package> <command>", FITNESS_* settings)} for our image."""
    processes = {}
    for name, service in _compose()["services"].items():
        command = service.get("command", [])
        if service.get("image") != OUR_IMAGE or command[:2] != ["python", "-m"]:
            continue
        if command[2] == "fitness.mtls":
            continue  # tls-init: a one-shot that reads no settings (checked below)
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


def test_it_sets_only_variables_the_services_read():
    for name, (kind, settings) in _our_processes().items():
        env = _compose()["services"][name]["environment"]
        assert all(key.startswith(ENV_PREFIX) or key == "TZ" for key in env), name
        unknown = set(settings) - _reads(kind.split()[0]) - {"TZ"}
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
    for name, (kind, _) in _our_processes().items():
        if kind == "user_service migrate":
            continue  # one-shot: it logs a few lines at most
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
        text += "".join(p.read_text() for p in sorted((ROOT / "deploy/patroni").glob("*.sh")))
    files = {name: Path(src["file"]).name for name, src in _compose()["secrets"].items()}
    derived = make_secrets.redis_files(secrets_dir)
    for secret in _mounted_secrets(service):
        text += derived.get(files[secret], "")
    return text


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


def test_it_accepts_the_nginx_configuration(tmp_path):
    nginx = require("/usr/sbin/nginx", "nginx")
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    # The gateways' names resolve only on the compose network.
    conf = re.sub(r"gateway_\d", "127.0.0.1", conf).replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(conf)
    result = _run(str(nginx), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"))
    assert result.returncode == 0, result.stdout + result.stderr


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
    if service.get("image") != OUR_IMAGE:
        return True  # a server image on its usual port; its own healthcheck proves it listens
    env = service.get("environment", {})
    return str(port) in (env.get("FITNESS_HTTP_PORT"), env.get("FITNESS_GRPC_PORT"))


class _HeaderRecorder(http.server.BaseHTTPRequestHandler):
    """A stand-in gateway that remembers the headers of every request it gets."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *_args) -> None:
        pass


@contextlib.contextmanager
def _nginx_before_a_stub(tmp_path: Path) -> Iterator[str]:
    """Run deploy/nginx.conf in front of a stand-in gateway; yield nginx's base URL."""
    nginx = require("/usr/sbin/nginx", "nginx")
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = re.sub(r"gateway_\d:8080", f"127.0.0.1:{stub.server_address[1]}", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (tmp_path / "nginx.conf").write_text(conf.replace("/tmp/", f"{tmp_path}/"))
    command = [str(nginx), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    server = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: _answers(f"http://127.0.0.1:{port}/nginx-health"), timeout=10)
        _HeaderRecorder.seen.clear()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        stub.shutdown()


def test_nginx_takes_workout_files_up_to_the_gateways_limit_and_other_bodies_to_1m(tmp_path):
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    imports = conf[conf.index("location ~ ^/users/[^/]+/imports$") :]
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", imports).group(1))
    assert 0 < megabytes * 2**20 - MAX_UPLOAD_BYTES <= 2**20  # the gateway's, and the framing
    with _nginx_before_a_stub(tmp_path) as nginx:
        upload = requests.post(f"{nginx}/users/u-1/imports", data=b"x" * 40 * 2**20, timeout=20)
        other = requests.post(f"{nginx}/users/register", data=b"x" * 2 * 2**20, timeout=20)
    assert upload.status_code == 200  # reached the gateway, which decides
    assert other.status_code == 413


@pytest.mark.parametrize("path", ["/users/login", "/ws"])
def test_nginx_sends_the_address_it_saw_whatever_the_client_claims(tmp_path, path):
    with _nginx_before_a_stub(tmp_path) as nginx:
        claimed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
        sent = requests.get(f"{nginx}{path}", headers=claimed, timeout=5)

    assert sent.status_code == 200
    [headers] = _HeaderRecorder.seen
    assert headers["X-Forwarded-For"] == "127.0.0.1"  # what nginx saw, not 6.6.6.6
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["Host"] == "127.0.0.1"  # the client's, not the upstream's name
    assert headers["X-Request-ID"]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


ONE_SHOT = {"tls-init", "migrate", "mongo-init", "es-setup", "kibana-setup"}


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
