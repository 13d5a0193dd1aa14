"""Fixtures for the deployment checks: the manifests as kustomize renders them, a sandbox."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from oncall_sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = REPO / "deployments"
OVERLAYS = ("local", "production")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

Manifest = dict[str, Any]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command line tool; the result, whatever its exit code."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def kustomize(path: Path) -> list[Manifest]:
    """`kubectl kustomize PATH`, parsed; fails the test if it does not render."""
    result = run(KUBECTL, "kustomize", str(path))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[Manifest], kind: str, name: str, namespace: str | None = None) -> Manifest:
    """The one rendered object of that kind and name (and namespace, if given)."""
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"{kind}/{name} in {namespace}: found {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    """Each overlay's name and its rendered objects."""
    overlay: str = request.param
    return overlay, kustomize(DEPLOYMENTS / "overlays" / overlay)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox cluster as the playbooks' tests start it (no fault injected)."""
    home = tmp_path_factory.mktemp("deploy-sandbox")
    with Sandbox(home=home, time_scale=0.01, scenario="bad-deploy") as cluster:
        yield cluster
