"""Scenarios: the workloads a sandbox starts with, and the fault it can inject."""

from __future__ import annotations

from dataclasses import dataclass, field

from oncall.sandbox.store import Obj

NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass(frozen=True)
class Workload:
    """A Deployment seeded with a history: created with `images[0]`, then updated in turn."""

    name: str
    labels: dict[str, str]
    container: str
    port: int
    images: tuple[str, ...]
    replicas: int = 1

    def manifest(self, namespace: str, image: str) -> Obj:
        """The Deployment as a CD pipeline would create it."""
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": namespace, "labels": dict(self.labels)},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": dict(self.labels)},
                "template": {
                    "metadata": {"labels": dict(self.labels)},
                    "spec": {
                        "containers": [
                            {
                                "name": self.container,
                                "image": image,
                                "ports": [{"containerPort": self.port, "protocol": "TCP"}],
                            }
                        ]
                    },
                },
            },
        }


@dataclass(frozen=True)
class ServiceSpec:
    """A Service and the simulated client traffic it receives."""

    name: str
    selector: dict[str, str]
    port: int
    requests_per_second: float

    def manifest(self, namespace: str) -> Obj:
        """The Service object."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "labels": {"app": self.selector.get("app", self.name)},
            },
            "spec": {
                "selector": dict(self.selector),
                "ports": [
                    {"name": "http", "port": self.port, "targetPort": self.port, "protocol": "TCP"}
                ],
            },
        }


@dataclass(frozen=True)
class ImageFault:
    """A bad release: the CD pipeline sets a Deployment's container image."""

    deployment: str
    container: str
    image: str

    def patch(self) -> Obj:
        """The strategic merge patch `kubectl set image` would send."""
        return {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": self.container, "image": self.image}]}
                }
            }
        }


@dataclass(frozen=True)
class Scenario:
    """Everything one scenario needs: namespace, workloads, services, fault."""

    name: str
    namespace: str
    workloads: tuple[Workload, ...]
    services: tuple[ServiceSpec, ...]
    fault: ImageFault | None = None
    extra_namespaces: tuple[str, ...] = field(default=NAMESPACES)


_BACKEND = "ghcr.io/gremlinsai/backend"

BAD_DEPLOY = Scenario(
    name="bad-deploy",
    namespace="gremlinsai",
    workloads=(
        Workload(
            "gremlinsai-backend-blue",
            {"app": "gremlinsai-backend", "version": "blue"},
            "backend",
            8000,
            (f"{_BACKEND}:1.4.1", f"{_BACKEND}:1.4.2"),
            replicas=3,
        ),
        Workload(
            "gremlinsai-backend-green",
            {"app": "gremlinsai-backend", "version": "green"},
            "backend",
            8000,
            (f"{_BACKEND}:1.4.2",),
            replicas=3,
        ),
        Workload(
            "weaviate", {"app": "weaviate"}, "weaviate", 8080, ("semitechnologies/weaviate:1.24.1",)
        ),
        Workload("ollama", {"app": "ollama"}, "ollama", 11434, ("ollama/ollama:0.1.32",)),
    ),
    services=(
        ServiceSpec(
            "gremlinsai-service", {"app": "gremlinsai-backend", "version": "blue"}, 8000, 50.0
        ),
        ServiceSpec("weaviate", {"app": "weaviate"}, 8080, 20.0),
        ServiceSpec("ollama", {"app": "ollama"}, 11434, 10.0),
    ),
    fault=ImageFault("gremlinsai-backend-blue", "backend", f"{_BACKEND}:1.5.0"),
)

EMPTY = Scenario(name="empty", namespace="default", workloads=(), services=())

SCENARIOS = {s.name: s for s in (BAD_DEPLOY,)}


def scenario_named(name: str | None) -> Scenario:
    """The scenario of that name (None: an empty cluster)."""
    if name is None:
        return EMPTY
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from None
