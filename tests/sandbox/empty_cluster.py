"""An empty sandbox (nodes and namespaces only) reached with kubectl and the Python client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from sandbox_cluster import KUBECTL, wait_for

from oncall_sandbox import Sandbox

NS = "default"


class EmptyCluster:
    """A started empty Sandbox, its kubectl and its `kubernetes` clients."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.api_client = config.new_client_from_config(config_file=str(sb.kubeconfig_path))
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against the sandbox, in namespace `default`."""
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.sb.kubeconfig_path), "-n", NS, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any]) -> None:
        """`kubectl apply -f -` of one object."""
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def get(self, *what: str) -> dict[str, Any]:
        """`kubectl get ... -o json`."""
        found: dict[str, Any] = json.loads(self.kubectl("get", *what, "-o", "json").stdout)
        return found

    def pods(self, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector, by name."""
        items: list[dict[str, Any]] = self.get("pods", "-l", selector)["items"]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "") -> None:
        """Poll until `predicate()` is truthy."""
        wait_for(predicate, timeout, what)


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[EmptyCluster]:
    """An empty sandbox at a hundredth of real time."""
    with Sandbox(tmp_path, time_scale=0.01, scenario=None) as sb:
        cluster = EmptyCluster(sb)
        yield cluster
        cluster.api_client.close()


def statefulset(name: str = "web", image: str = "nginx:1.27", replicas: int = 3) -> dict[str, Any]:
    """A StatefulSet manifest with one claim template, as a user writes it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def daemonset(name: str = "agent", image: str = "nginx:1.27") -> dict[str, Any]:
    """A DaemonSet manifest, as a user writes it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": image}]},
            },
        },
    }
