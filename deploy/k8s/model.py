"""The rendered manifests read as the cluster reads them, for the tests to ask questions of.

What a container is given (its environment from ConfigMaps, the secret files mounted into it),
which pods a label selector picks, where a Service sends a connection, and whether the
NetworkPolicies let one pod reach another. Only the forms the manifests use are understood;
anything else fails loudly rather than being read wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.k8s.render import containers, pod_template

CLUSTER_DOMAIN = "svc.cluster.local"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (its labels) in a namespace, or anywhere outside (ns None).

    A pod in another namespace (a store) is known by its namespace alone: labels None.
    """

    ns: str | None
    labels: dict | None = None


WORLD = Peer(ns=None)


def selects(selector: dict, labels: dict | None) -> bool:
    """Tell whether a label selector (``matchLabels`` only) picks ``labels``."""
    if selector.get("matchExpressions"):
        raise ValueError("only matchLabels is understood")
    wanted = selector.get("matchLabels", {})
    return not wanted or (labels is not None and wanted.items() <= labels.items())


def port_named(container: dict, name: str | int) -> int | None:
    """Return the container's port called ``name`` (a number is itself, if declared)."""
    for port in container.get("ports", []):
        if name in (port.get("name"), port["containerPort"]):
            return port["containerPort"]
    return None


class Manifests:
    """The objects ``kubectl apply -k`` sends, and what the cluster makes of them."""

    def __init__(self, objects: list[dict]):
        self.objects = objects
        [namespace] = self.of_kind("Namespace")
        self.namespace: str = namespace["metadata"]["name"]

    def of_kind(self, kind: str) -> list[dict]:
        """Return the objects of ``kind``, in order."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        """Return the one object of ``kind`` called ``name``."""
        [found] = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return found

    def workloads(self) -> list[tuple[dict, dict]]:
        """Return (workload, pod template) for every Deployment, Job and CronJob."""
        return [(obj, t) for obj in self.objects if (t := pod_template(obj)) is not None]

    def pods(self) -> dict[str, dict]:
        """Return {name: pod template}, by each pod's app.kubernetes.io/name."""
        return {t["metadata"]["labels"]["app.kubernetes.io/name"]: t for _, t in self.workloads()}

    def containers(self) -> list[dict]:
        """Return every workload's containers."""
        return [c for obj in self.objects for c in containers(obj)]

    def env(self, container: dict) -> dict[str, str]:
        """Return the container's environment: its ConfigMaps' (envFrom), then its own."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env |= self.named("ConfigMap", source["configMapRef"]["name"])["data"]
        for variable in container.get("env", []):
            if "valueFrom" in variable:
                ref = variable["valueFrom"]["configMapKeyRef"]  # the one reference used
                env[variable["name"]] = self.named("ConfigMap", ref["name"])["data"][ref["key"]]
            else:
                env[variable["name"]] = variable["value"]
        return env

    def secret_files(
        self, template: dict, keys: dict[str, list[str]]
    ) -> dict[str, tuple[str, str]]:
        """Return {path: (Secret, key)} of every secret file the pod mounts.

        ``keys`` names each Secret's keys, for a volume that mounts them all (no ``items``).
        """
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        files = {}
        for container in template["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                sources = [s["secret"] for s in volume.get("projected", {}).get("sources", [])]
                if "secret" in volume:
                    sources = [volume["secret"] | {"name": volume["secret"]["secretName"]}]
                for secret in sources:
                    items = secret.get("items") or [
                        {"key": k, "path": k} for k in keys[secret["name"]]
                    ]
                    for item in items:
                        path = f"{mount['mountPath']}/{item['path']}"
                        files[path] = (secret["name"], item["key"])
        return files

    def destination(self, host: str, port: int) -> tuple[str, int]:
        """Return where a connection to ``host:port`` arrives: (pod name, its port) for one of
        our Services, ("namespace NAME", port) for another namespace's, ("world", port) else."""
        name = host.removesuffix(f".{self.namespace}.{CLUSTER_DOMAIN}")
        services = {s["metadata"]["name"]: s["spec"] for s in self.of_kind("Service")}
        if name in services:
            [entry] = [p for p in services[name]["ports"] if p["port"] == port]
            selector = {"matchLabels": services[name]["selector"]}
            [(pod, template)] = [
                (pod, t)
                for pod, t in self.pods().items()
                if selects(selector, t["metadata"]["labels"])
            ]
            found = (port_named(c, entry["targetPort"]) for c in template["spec"]["containers"])
            [target] = {port for port in found if port is not None}
            return pod, target
        if host.endswith(f".{CLUSTER_DOMAIN}"):
            return f"namespace {host.split('.')[-4]}", port
        return "world", port

    def peer(self, place: str) -> Peer:
        """Return the Peer of a place as ``destination`` names it."""
        if place == "world":
            return WORLD
        if place.startswith("namespace "):
            return Peer(ns=place.removeprefix("namespace "))
        return Peer(ns=self.namespace, labels=self.pods()[place]["metadata"]["labels"])

    def admits(
        self, labels: dict, direction: str, peer: Peer, port: int, protocol: str = "TCP"
    ) -> bool:
        """Tell whether the NetworkPolicies let the pod with ``labels`` reach ``peer`` on
        ``port`` (direction "Egress") or be reached by it there ("Ingress")."""
        policies = [
            p["spec"]
            for p in self.of_kind("NetworkPolicy")
            if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
        ]
        if not policies:
            return True  # no policy selects the pod: Kubernetes lets everything through
        side = "to" if direction == "Egress" else "from"
        for rule in (r for p in policies for r in p.get(direction.lower(), [])):
            ports = rule.get("ports", [{"protocol": protocol, "port": port}])
            if not any(p.get("protocol", "TCP") == protocol and p["port"] == port for p in ports):
                continue
            if not rule.get(side) or any(self._matches(entry, peer) for entry in rule[side]):
                return True
        return False

    def _matches(self, entry: dict, peer: Peer) -> bool:
        """Tell whether one ``to``/``from`` entry of a policy rule matches ``peer``."""
        if "ipBlock" in entry or peer.ns is None:
            return "ipBlock" in entry and peer.ns is None
        if "namespaceSelector" in entry:
            in_namespace = selects(entry["namespaceSelector"], {NAMESPACE_LABEL: peer.ns})
        else:
            in_namespace = peer.ns == self.namespace
        return in_namespace and selects(entry.get("podSelector", {}), peer.labels)
