"""Writing the starting cluster into the store, with its release history already settled."""

from __future__ import annotations

from collections.abc import Callable

from oncall_sandbox.admission import admit
from oncall_sandbox.discovery import find_resource
from oncall_sandbox.scenarios import NAMESPACES, SERVICES, WORKLOADS, config_maps, volumes
from oncall_sandbox.store import Store


def _namespace(name: str) -> dict[str, object]:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def seed_namespaces(store: Store, names: tuple[str, ...] = NAMESPACES) -> None:
    """Create the namespaces."""
    for name in names:
        store.create("namespaces", "", _namespace(name))


def seed_workloads(store: Store, settle: Callable[[], None]) -> None:
    """ConfigMaps, volumes, Deployments (each release in turn) and Services."""
    deployments = find_resource("apps", "deployments")
    services = find_resource("", "services")
    configmaps = find_resource("", "configmaps")
    assert deployments is not None and services is not None and configmaps is not None
    for config in config_maps():
        store.create("configmaps", config["metadata"]["namespace"], admit(configmaps, config, None))
    for resource, namespace, obj in volumes():
        store.create(resource, namespace, obj)
    for workload in WORKLOADS:
        ns = workload.namespace
        for i, image in enumerate(workload.images):
            manifest = workload.manifest(image)
            if i == 0:
                store.create("deployments", ns, admit(deployments, manifest, None))
            else:
                current = store.get("deployments", ns, workload.name)
                manifest["metadata"] = current["metadata"]
                store.update("deployments", ns, admit(deployments, manifest, current))
            settle()
    for spec in SERVICES:
        manifest = admit(services, spec.manifest(), None)
        manifest["status"] = {"loadBalancer": {}}
        store.create("services", spec.namespace, manifest)
    settle()
