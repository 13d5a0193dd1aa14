"""The cluster every scenario starts from: GremlinsAI, CRONOS AI and kube-state-metrics."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from oncall_sandbox.registry import SCENARIOS, ScenarioSpec
from oncall_sandbox.store import Obj

NAMESPACES = ("default", "kube-system", "kube-public", "gremlinsai", "cronos-ai")


@dataclass(frozen=True)
class Workload:
    """A Deployment seeded with a history: created with `images[0]`, then updated in turn."""

    namespace: str
    name: str
    labels: dict[str, str]
    container: str
    port: int
    images: tuple[str, ...]
    replicas: int = 1
    pod_spec: Obj = field(default_factory=dict)  # extra container fields (env, resources)
    volumes: tuple[Obj, ...] = ()
    strategy: str = "RollingUpdate"

    def manifest(self, image: str) -> Obj:
        """The Deployment as a CD pipeline would create it."""
        container: Obj = {
            "name": self.container,
            "image": image,
            "ports": [{"containerPort": self.port, "protocol": "TCP"}],
            **copy.deepcopy(self.pod_spec),
        }
        spec: Obj = {"containers": [container]}
        if self.volumes:
            spec["volumes"] = [copy.deepcopy(v) for v in self.volumes]
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": dict(self.labels)},
                "strategy": {"type": self.strategy},
                "template": {"metadata": {"labels": dict(self.labels)}, "spec": spec},
            },
        }


@dataclass(frozen=True)
class ServiceSpec:
    """A Service and the simulated client traffic it receives."""

    namespace: str
    name: str
    selector: dict[str, str]
    port: int
    requests_per_second: float

    def manifest(self) -> Obj:
        """The Service object."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app": self.selector.get("app", self.name)},
            },
            "spec": {
                "selector": dict(self.selector),
                "ports": [
                    {"name": "http", "port": self.port, "targetPort": self.port, "protocol": "TCP"}
                ],
            },
        }


_BACKEND = "ghcr.io/gremlinsai/backend"
_CRONOS = "ghcr.io/cronos-ai/cronos-ai"
CRONOS_CONFIG = {
    "CACHE_TTL_SECONDS": "300",
    "LOG_LEVEL": "INFO",
    "MODEL_REGISTRY_URL": "http://model-registry.cronos-ai:8080",
}
WORKLOADS = (
    Workload(
        "gremlinsai",
        "gremlinsai-backend-blue",
        {"app": "gremlinsai-backend", "version": "blue"},
        "backend",
        8000,
        (f"{_BACKEND}:1.4.1", f"{_BACKEND}:1.4.2"),
        replicas=3,
    ),
    Workload(
        "gremlinsai",
        "gremlinsai-backend-green",
        {"app": "gremlinsai-backend", "version": "green"},
        "backend",
        8000,
        (f"{_BACKEND}:1.4.2",),
        replicas=3,
    ),
    Workload(
        "gremlinsai",
        "weaviate",
        {"app": "weaviate"},
        "weaviate",
        8080,
        ("semitechnologies/weaviate:1.24.1",),
        pod_spec={"volumeMounts": [{"name": "data", "mountPath": "/var/lib/weaviate"}]},
        volumes=({"name": "data", "persistentVolumeClaim": {"claimName": "weaviate-data"}},),
    ),
    Workload("gremlinsai", "ollama", {"app": "ollama"}, "ollama", 11434, ("ollama/ollama:0.1.32",)),
    Workload(
        "cronos-ai",
        "cronos-ai",
        {"app": "cronos-ai"},
        "cronos-ai",
        8080,
        (f"{_CRONOS}:2.3.1", f"{_CRONOS}:2.4.0"),
        replicas=3,
        # A singleton job scheduler inside: two versions must never run side by side.
        strategy="Recreate",
        pod_spec={
            "env": [{"name": "DB_POOL_SIZE", "value": "10"}],
            "envFrom": [{"configMapRef": {"name": "cronos-ai-config"}}],
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"},
            },
        },
    ),
    Workload(
        "kube-system",
        "kube-state-metrics",
        {"app.kubernetes.io/name": "kube-state-metrics"},
        "kube-state-metrics",
        8080,
        ("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",),
    ),
)
SERVICES = (
    ServiceSpec(
        "gremlinsai",
        "gremlinsai-service",
        {"app": "gremlinsai-backend", "version": "blue"},
        8000,
        50.0,
    ),
    ServiceSpec("gremlinsai", "weaviate", {"app": "weaviate"}, 8080, 20.0),
    # Ollama's load is the backends' generation calls, not a traffic rate of its own.
    ServiceSpec("gremlinsai", "ollama", {"app": "ollama"}, 11434, 0.0),
    ServiceSpec("cronos-ai", "cronos-ai", {"app": "cronos-ai"}, 8080, 20.0),
    ServiceSpec(
        "kube-system",
        "kube-state-metrics",
        {"app.kubernetes.io/name": "kube-state-metrics"},
        8080,
        0.0,
    ),
)


def config_maps() -> list[Obj]:
    """The ConfigMaps the workloads read."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "cronos-ai-config",
                "namespace": "cronos-ai",
                "labels": {"app": "cronos-ai"},
            },
            "data": dict(CRONOS_CONFIG),
        }
    ]


def volumes() -> list[tuple[str, str, Obj]]:
    """(resource, namespace, object) of Weaviate's bound PersistentVolumeClaim and its volume."""
    pv = "pvc-5b0e6f3a-8c1d-4a53-9d0e-7a2f4b1c9e21"
    claim: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "weaviate-data",
            "namespace": "gremlinsai",
            "labels": {"app": "weaviate"},
            "annotations": {"pv.kubernetes.io/bind-completed": "yes"},
            "finalizers": ["kubernetes.io/pvc-protection"],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "volumeName": pv,
        },
        "status": {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "10Gi"},
        },
    }
    volume: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "10Gi"},
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": "gremlinsai",
                "name": "weaviate-data",
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "hostPath": {"path": f"/var/local-path-provisioner/{pv}"},
        },
        "status": {"phase": "Bound"},
    }
    return [("persistentvolumeclaims", "gremlinsai", claim), ("persistentvolumes", "", volume)]


@dataclass(frozen=True)
class Scenario:
    """A scenario's name, its namespace and its description (None: an empty cluster)."""

    name: str
    namespace: str
    spec: ScenarioSpec | None

    @property
    def seeded(self) -> bool:
        """True when the cluster gets the workloads (every named scenario)."""
        return self.spec is not None


EMPTY = Scenario(name="empty", namespace="default", spec=None)


def scenario_named(name: str | None) -> Scenario:
    """The scenario of that name (None: an empty cluster)."""
    if name is None:
        return EMPTY
    try:
        spec = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from None
    return Scenario(spec.name, spec.namespace, spec)
