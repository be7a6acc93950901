"""The Kubernetes manifests (deploy/k8s) are valid for a cluster and agree with the code.

They are rendered as ``kubectl apply -k deploy/k8s`` would (only the kustomize fields they use,
any other refused), then checked offline: every object against the Kubernetes schemas of the
oldest and the newest version we support (kubernetes-validate carries them); the rules of a
restricted namespace and ours (no root, sized, probed, pinned images); and agreement with the
code and with compose: only settings the processes read and all they need, every secret file
they read mounted and nothing more, the edge running compose's nginx configuration, and network
policies that allow exactly the connections the settings name. No cluster is involved.
"""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml
from flask import Flask

from deploy import make_secrets
from deploy.k8s.model import Manifests, Peer, port_named, selects
from deploy.k8s.render import HERE as K8S
from deploy.k8s.render import Unsupported, containers, documents, render
from fitness import mtls, web
from fitness.config import COMMON_DEFAULTS, ENV_PREFIX, FILE_SUFFIX
from tests.support import REPO_ROOT
from tests.support.deployment import EVERY_PROCESS, NEEDS, compose_file
from tests.support.system_packages import require

# The oldest Kubernetes the manifests are for, and the newest the validator carries.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
OUR_IMAGES = ("fitness-goal-tracker", "fitness-goal-tracker-etl")
SCALED = {"gateway serve", "user_service serve", "activity_service serve"}
# Compose runs the ETL's own scheduler; here a CronJob keeps the schedule and runs `etl run`.
AS_IN_COMPOSE = {"etl run": "etl schedule"}
PLACEHOLDER = "REPLACE-ME"
REDIS_PORT = 6379  # a Sentinel names the primary, which listens on Redis's own port
DNS = Peer(ns="kube-system", labels={"k8s-app": "kube-dns"})


@functools.cache
def manifests() -> Manifests:
    """Return the objects ``kubectl apply -k deploy/k8s`` sends, read as the cluster reads them."""
    return Manifests(render())


def _compose() -> dict[str, dict]:
    """Return docker-compose.yml's services."""
    return compose_file()["services"]


def _examples() -> list[dict]:
    return documents(K8S / "examples" / "secrets.yaml")


def _process(container: dict) -> str | None:
    """Return "<package> <command>" for a process of ours, None for anything else."""
    command = container.get("command", [])
    return " ".join(command[2:4]) if command[:2] == ["python", "-m"] else None


def _settings(container: dict) -> dict[str, str]:
    """Return {setting: value} as fitness.config reads them (X from FITNESS_X or _X_FILE)."""
    return {
        key.removeprefix(ENV_PREFIX).removesuffix(FILE_SUFFIX): value
        for key, value in manifests().env(container).items()
    }


def test_it_renders_every_manifest_once():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in manifests().objects]
    assert len(keys) == len(set(keys))
    assert not manifests().of_kind("Secret"), "secrets are made from files, never kept here"


@pytest.mark.parametrize(
    ("kustomization", "refused"),
    [
        ("namespace: x\nresources: []\npatches: []\n", "patches"),
        ("namespace: x\nresources: [a.yaml]\n", "alias"),
    ],
)
def test_the_renderer_refuses_what_it_does_not_do_as_kustomize_does(
    tmp_path, kustomization, refused
):
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    (tmp_path / "a.yaml").write_text("kind: ConfigMap\nmetadata: &m {name: a}\nx: *m\n")
    with pytest.raises(Unsupported, match=refused):
        render(tmp_path)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_the_kubernetes_version(version):
    errors = []
    for obj in [*manifests().objects, *_examples()]:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(map(str, error.path))
            errors.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {error.message}")
    assert not errors, "\n".join(errors)


def test_every_pod_runs_unprivileged_as_its_image_user():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    [image_user] = {int(user) for user in re.findall(r"^USER (\d+)", dockerfile, re.M)}
    for workload, template in manifests().workloads():
        pod = template["spec"]
        name = workload["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), name
        for volume in pod.get("volumes", []):
            assert set(volume) & {"configMap", "secret", "projected", "emptyDir"}, volume
            assert "sizeLimit" in volume.get("emptyDir", {"sizeLimit": 0}), (name, volume)
        for container in pod["containers"]:
            context = pod.get("securityContext", {}) | container.get("securityContext", {})
            assert context.get("runAsNonRoot") is True, name
            assert context.get("runAsUser", 0) > 0, name
            if container["image"].rpartition("/")[2].startswith(OUR_IMAGES):
                assert context["runAsUser"] == image_user, name
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("readOnlyRootFilesystem") is True, name
            assert context.get("capabilities") == {"drop": ["ALL"]}, name
            assert context.get("seccompProfile") == {"type": "RuntimeDefault"}, name


def test_every_image_is_pinned_ours_come_from_one_build_and_nginx_is_composes():
    compose = _compose()
    tags: dict[str, set[str]] = {"ours": set(), "nginx": set()}
    for _, template in manifests().workloads():
        for container in template["spec"]["containers"]:
            name, _, tag = container["image"].rpartition("/")[2].partition(":")
            assert tag and tag != "latest", container["image"]
            tags["ours" if name in OUR_IMAGES else container["name"]].add(tag)
    assert len(tags["ours"]) == 1, tags
    assert tags["nginx"] == {compose["nginx"]["image"].partition(":")[2]}


def _cpus(quantity: str | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _bytes(quantity: str) -> int:
    # Compose's M and G are binary (Docker's units), like Kubernetes' Mi and Gi.
    number, unit = re.fullmatch(r"(\d+)([MG])i?", quantity).groups()
    return int(number) * 2 ** (20 if unit == "M" else 30)


def _compose_limits() -> dict[str, tuple[float, int]]:
    """Return {process or "nginx": (cpus, memory bytes)} as docker-compose.yml limits them."""
    limits = {}
    for name, service in _compose().items():
        kind = _process(service) or name
        limit = service["deploy"]["resources"]["limits"]
        limits[kind] = (_cpus(limit["cpus"]), _bytes(limit["memory"]))
    return limits


def test_every_container_is_sized_as_compose_sizes_it():
    compose = _compose_limits()
    for _, template in manifests().workloads():
        for container in template["spec"]["containers"]:
            requests, limits = (container["resources"][k] for k in ("requests", "limits"))
            kind = _process(container) or container["name"]
            assert set(requests) == set(limits) == {"cpu", "memory"}, kind
            assert _cpus(requests["cpu"]) <= _cpus(limits["cpu"]), kind
            # Memory is never overcommitted: a node out of it kills pods.
            assert requests["memory"] == limits["memory"], kind
            mine = (_cpus(limits["cpu"]), _bytes(limits["memory"]))
            assert mine == compose[AS_IN_COMPOSE.get(kind, kind)], kind


def test_every_server_is_probed_where_it_listens():
    probes = set()
    for workload, template in manifests().workloads():
        for container in template["spec"]["containers"]:
            if workload["kind"] != "Deployment":
                continue  # a run to its end: nothing to probe
            ready, live = container["readinessProbe"], container["livenessProbe"]
            for probe in (ready, live, container.get("startupProbe")):
                assert probe is None or port_named(container, probe["httpGet"]["port"]), container
            if (kind := _process(container)) is not None:
                settings = _settings(container)
                assert int(settings["HTTP_PORT"]) == port_named(container, "http"), kind
                grpc = port_named(container, "grpc")
                assert settings.get("GRPC_PORT") == (None if grpc is None else str(grpc)), kind
                probes.add((live["httpGet"]["path"], ready["httpGet"]["path"]))
    [(live_path, ready_path)] = probes
    app = Flask("probed")

    def store_down() -> None:
        raise ConnectionError("the store is down")

    web.init_app(app, ready_check=store_down)
    client = app.test_client()
    # Alive while its store is down (no restart), but out of the Service until it is back.
    assert client.get(live_path).status_code == 200
    assert client.get(ready_path).status_code == 503


def _pod_labels(template: dict) -> dict:
    return template["metadata"]["labels"]


def test_every_deployment_has_a_disruption_budget_and_the_services_an_autoscaler():
    for workload, template in manifests().workloads():
        if workload["kind"] != "Deployment":
            continue
        name, labels = workload["metadata"]["name"], _pod_labels(template)
        [budget] = [
            b["spec"]
            for b in manifests().of_kind("PodDisruptionBudget")
            if selects(b["spec"]["selector"], labels)
        ]
        autoscalers = [
            h["spec"]
            for h in manifests().of_kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]
            == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        ]
        kinds = {_process(c) for c in containers(workload)}
        if kinds & SCALED:
            [autoscaler] = autoscalers
            assert "replicas" not in workload["spec"], f"{name}: the autoscaler owns the count"
            fewest = autoscaler["minReplicas"]
            [metric] = autoscaler["metrics"]
            assert metric["resource"]["name"] == "cpu"  # relative to the CPU requests
        else:
            assert not autoscalers, name
            fewest = workload["spec"]["replicas"]
        assert fewest >= 2, name
        # However many there are, a drain leaves at least one serving.
        assert budget.get("minAvailable", 1) >= 1, name
        assert budget.get("maxUnavailable", 0) < fewest, name


def test_it_runs_every_process_compose_runs_and_the_etl_on_its_schedule():
    compose = _compose()
    # Certificates are Secrets on Kubernetes (the edge's: cert-manager's or yours), not one-shots.
    one_shots = {"fitness.mtls /var/lib/fitness-tls", "fitness.edge_tls /var/lib/fitness-tls"}
    theirs = {_process(s) for s in compose.values()} - {None, *one_shots}
    ours = {_process(c) for c in manifests().containers()} - {None}
    assert {AS_IN_COMPOSE.get(kind, kind) for kind in ours} == theirs
    [cron] = manifests().of_kind("CronJob")
    assert cron["spec"]["schedule"] == compose["etl"]["environment"]["FITNESS_ETL_SCHEDULE"]
    assert cron["spec"]["timeZone"].removeprefix("Etc/") == compose["etl"]["environment"]["TZ"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def _reads(kind: str) -> set[str]:
    package = importlib.import_module(kind.split()[0])
    return set(COMMON_DEFAULTS) | set(package.DEFAULTS)


def test_each_process_is_given_only_settings_it_reads_and_all_it_needs():
    for _, template in manifests().workloads():
        for container in template["spec"]["containers"]:
            if (kind := _process(container)) is None:
                continue
            env, settings = manifests().env(container), _settings(container)
            assert all(key.startswith(ENV_PREFIX) for key in env), kind
            unknown = set(settings) - _reads(kind)
            assert not unknown, f"{kind} is given settings nothing reads: {sorted(unknown)}"
            needs = NEEDS[AS_IN_COMPOSE.get(kind, kind)] - {"ETL_SCHEDULE"} | EVERY_PROCESS
            assert not needs - set(settings), f"{kind} lacks {sorted(needs - set(settings))}"
            assert settings["ENV"] == "production"
            for key, value in env.items():
                if re.search(r"PASSWORD|SECRET", key):
                    assert key.endswith(FILE_SUFFIX), f"{kind}: {key} holds a secret itself"
                for url in value.split(","):
                    assert urlsplit(url).password is None, f"{kind}: {key} has a password"


def _secret_files_read(container: dict) -> set[str]:
    """Return the secret files the container's process opens."""
    if (kind := _process(container)) is None:  # the edge: its certificate and key
        return set(re.findall(r"ssl_certificate(?:_key)? (\S+);", _edge_conf()))
    settings = _settings(container)
    read = {v for k, v in manifests().env(container).items() if k.endswith(FILE_SUFFIX)}
    role, command = kind.split()
    if command == "serve" and role in mtls.ROLES:  # its own pair and the CA, no one else's
        folder = settings["TLS_DIR"]
        read |= {f"{folder}/ca.crt", f"{folder}/{role}.crt", f"{folder}/{role}.key"}
    return read


def test_every_secret_a_process_reads_is_mounted_there_and_nothing_else_is(tmp_path):
    keys = {s["metadata"]["name"]: list(s["stringData"]) for s in _examples()}
    used = set()
    for workload, template in manifests().workloads():
        mounted = manifests().secret_files(template, keys)
        read = set().union(*map(_secret_files_read, template["spec"]["containers"]))
        assert set(mounted) == read, workload["metadata"]["name"]
        used |= set(mounted.values())
    described = {
        (secret["metadata"]["name"], key): value
        for secret in _examples()
        for key, value in secret["stringData"].items()
    }
    assert set(described) == used, "examples/secrets.yaml describes exactly what is mounted"
    assert set(described.values()) == {PLACEHOLDER}
    # docs/kubernetes.md makes fitness-secrets from the files `make secrets` makes: all of them.
    passwords = {key for name, key in described if name == "fitness-secrets"}
    assert passwords <= set(make_secrets.ensure(tmp_path))
    guide = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    assert set(re.findall(r"--from-file=deploy/secrets/(\w+)", guide)) == passwords


Tree = list[tuple[tuple[str, ...], "Tree | None"]]


def _nginx(conf: str) -> Tree:
    """Return nginx's configuration as a tree of (words, children or None), comments dropped."""
    tokens = re.findall(r'"[^"]*"|[{};]|[^\s{};"]+', re.sub(r"#.*", "", conf))
    stack: list[Tree] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((tuple(words), None))
        elif token == "{":
            stack[-1].append((tuple(words), []))
            stack.append(stack[-1][-1][1])
        elif token == "}":
            stack.pop()
        else:
            words.append(token)
            continue
        words = []
    [tree] = stack
    return tree


def _block(tree: Tree, *words: str) -> Tree:
    [children] = [children for found, children in tree if found == words and children is not None]
    return children


def _without(tree: Tree, *prefixes: tuple[str, ...]) -> Tree:
    """Return ``tree`` less the directives and blocks whose words start with one of ``prefixes``."""
    return [
        (words, None if children is None else _without(children, *prefixes))
        for words, children in tree
        if not any(words[: len(prefix)] == prefix for prefix in prefixes)
    ]


def _edge_conf() -> str:
    return manifests().named("ConfigMap", "fitness-edge")["data"]["nginx.conf"]


def test_the_edge_runs_composes_nginx_configuration():
    compose = _nginx((REPO_ROOT / "deploy" / "nginx.conf").read_text())
    edge = _nginx(_edge_conf())
    # How the gateways are found: compose asks Docker's DNS at each request; here the gateway
    # Service's address, stable while the Service stands, is resolved once into an upstream.
    assert _block(_block(edge, "http"), "upstream", "gateways") == [
        (("server", "gateway:8080", "max_fails=1", "fail_timeout=5s"), None),
        (("keepalive", "64"), None),
    ]
    servers = [children for words, children in _block(edge, "http") if words == ("server",)]
    assert any((("set", "$gateway", "http://gateways"), None) in s for s in servers)
    differ = [("worker_processes",), ("resolver",), ("resolver_timeout",), ("upstream",)]
    differ.append(("set", "$gateway"))
    # The rest is compose's, word for word: TLS, limits, timeouts, headers, retries, WebSockets.
    assert _without(edge, *differ) == _without(compose, *differ)


def test_nginx_accepts_the_edge_configuration(tmp_path):
    nginx = require("/usr/sbin/nginx", "nginx")
    mtls.ensure_material(tmp_path / "tls")  # any certificate and key will do
    conf = _edge_conf().replace("gateway:8080", "127.0.0.1:8080").replace("/tmp/", f"{tmp_path}/")
    conf = conf.replace("/etc/nginx/tls/fullchain.pem", f"{tmp_path}/tls/gateway.crt")
    conf = conf.replace("/etc/nginx/tls/privkey.pem", f"{tmp_path}/tls/gateway.key")
    (tmp_path / "nginx.conf").write_text(conf)
    command = [str(nginx), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _addresses(settings: dict[str, str]) -> set[tuple[str, int]]:
    """Return the (host, port) pairs a process's settings make it connect to."""
    pairs = set()
    for key, value in settings.items():
        if key == "LOGSTASH_HOST":
            pairs.add((value, int(settings["LOGSTASH_PORT"])))
        if not key.endswith(("_URL", "_URLS", "_REPLICAS", "_TARGETS")):
            continue
        for item in value.split(","):
            parts = urlsplit(item if "://" in item else f"tcp://{item}")
            for netloc in [parts.netloc.rpartition("@")[2], *parse_qs(parts.query).get("host", [])]:
                host, _, port = netloc.partition(":")
                assert port, f"{key}: {host} without its port"
                pairs.add((host, int(port)))
                if value.startswith("redis+sentinel://"):
                    pairs.add((host, REDIS_PORT))
    return pairs


def _connections() -> dict[str, set[tuple[str, int]]]:
    """Return {pod: its destinations} as the settings (and the edge's upstream) name them."""
    needed: dict[str, set[tuple[str, int]]] = {}
    upstream = _block(_block(_nginx(_edge_conf()), "http"), "upstream", "gateways")
    for pod, template in manifests().pods().items():
        needed[pod] = set()
        for container in template["spec"]["containers"]:
            if _process(container) is None:
                pairs = {tuple(w[1].split(":")) for w, _ in upstream if w[0] == "server"}
            else:
                pairs = _addresses(_settings(container))
            needed[pod] |= {manifests().destination(host, int(port)) for host, port in pairs}
    return needed


def test_network_policies_deny_by_default_and_cover_every_pod():
    policies = [p["spec"] for p in manifests().of_kind("NetworkPolicy")]
    assert {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} in policies
    for pod, template in manifests().pods().items():
        own = [
            p
            for p in policies
            if p["podSelector"] and selects(p["podSelector"], _pod_labels(template))
        ]
        assert [set(p["policyTypes"]) for p in own] == [{"Ingress", "Egress"}], pod
        for protocol in ("UDP", "TCP"):
            assert manifests().admits(_pod_labels(template), "Egress", DNS, 53, protocol), pod


def _ingress_needed() -> dict[str, set[tuple[str, int]]]:
    """Return {pod: (source, port) it must admit}: its callers; anyone at a load balancer."""
    needed: dict[str, set[tuple[str, int]]] = {pod: set() for pod in manifests().pods()}
    for source, destinations in _connections().items():
        for pod, port in destinations:
            if pod in needed:
                needed[pod].add((source, port))
    for service in manifests().of_kind("Service"):
        if service["spec"].get("type") == "LoadBalancer":
            for entry in service["spec"]["ports"]:
                pod, port = manifests().destination(service["metadata"]["name"], entry["port"])
                needed[pod] |= {(source, port) for source in {"world", *manifests().pods()}}
    return needed


def _mentioned() -> tuple[set[str], set[int]]:
    """Return every place and port the policies, the pods or the settings name (DNS aside)."""
    places, ports = {"world", *manifests().pods()}, set()
    for destinations in _connections().values():
        places |= {place for place, _ in destinations}
        ports |= {port for _, port in destinations}
    for _, template in manifests().workloads():
        ports |= {
            p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
    for policy in manifests().of_kind("NetworkPolicy"):
        for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]:
            ports |= {p["port"] for p in rule.get("ports", []) if p["port"] != 53}
            for selector in rule.get("to", rule.get("from", [])):
                name = selector.get("namespaceSelector", {}).get("matchLabels", {})
                places |= {f"namespace {n}" for n in name.values() if n != DNS.ns}
    return places, ports


def _allowed(labels: dict, direction: str, others: set[str], ports: set[int]) -> set:
    """Return the (place, port) pairs the policies let the pod with ``labels`` reach or be
    reached from."""
    k8s = manifests()
    return {
        (other, port)
        for other in others
        for port in ports
        if k8s.admits(labels, direction, k8s.peer(other), port)
    }


def test_network_policies_allow_exactly_the_connections_the_settings_name():
    places, ports = _mentioned()
    outgoing, incoming = _connections(), _ingress_needed()
    for pod, template in manifests().pods().items():
        labels, everyone = _pod_labels(template), {"world", *manifests().pods()}
        assert _allowed(labels, "Egress", places, ports) == outgoing[pod], pod
        assert _allowed(labels, "Ingress", everyone, ports) == incoming[pod], pod
