"""Render deploy/k8s as ``kubectl apply -k deploy/k8s`` would, offline.

``python -m deploy.k8s.render`` prints the objects, one YAML document each; the tests read the
manifests through ``render()`` (tests/deployment/test_k8s_manifests.py). Only the kustomize
fields the kustomization uses are implemented, and any other is refused: what this returns is
what kubectl sends, or nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}
WORKLOADS = {"Deployment", "Job", "CronJob"}


class Unsupported(ValueError):
    """The kustomization asks for something this renderer does not do."""


def documents(path: Path) -> list[dict]:
    """Return the YAML documents of ``path``, refusing anchors and aliases."""
    text = path.read_text()
    # kustomize has read anchors differently from one version to the next: the manifests use none.
    if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text)):
        raise Unsupported(f"{path.name}: a YAML alias")
    return [document for document in yaml.safe_load_all(text) if document]


def render(folder: Path = HERE) -> list[dict]:
    """Return the objects of ``folder``'s kustomization, in order, as kustomize makes them."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    if unknown := set(kustomization) - FIELDS:
        raise Unsupported(f"kustomize's {sorted(unknown)}")
    namespace, images = kustomization["namespace"], kustomization.get("images", [])
    objects = []
    for resource in kustomization["resources"]:
        for obj in documents(folder / resource):
            if obj["kind"] != "Namespace":  # the one cluster-scoped kind used; kustomize
                obj["metadata"]["namespace"] = namespace  # leaves its name be
            for container in containers(obj):
                container["image"] = _retagged(container["image"], images)
            objects.append(obj)
    return objects


def _retagged(image: str, images: list[dict]) -> str:
    """Return ``image`` as kustomize's ``images`` field rewrites it."""
    name, _, tag = image.partition(":")
    for entry in images:
        if entry["name"] == name:
            name, tag = entry.get("newName", name), entry.get("newTag", tag)
    return f"{name}:{tag}" if tag else name


def pod_template(obj: dict) -> dict | None:
    """Return the pod template of a Deployment, Job or CronJob (None for other kinds)."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"] if obj["kind"] in WORKLOADS else None


def containers(obj: dict) -> list[dict]:
    """Return the containers of a workload's pods (none for other kinds)."""
    template = pod_template(obj)
    return template["spec"]["containers"] if template else []


def main() -> None:
    """Print the rendered objects, one YAML document each."""
    yaml.safe_dump_all(render(), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
