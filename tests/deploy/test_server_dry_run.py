"""`kubectl apply --dry-run=server -k` against the sandbox: the API server accepts every object
of the local overlay, and a dry run changes nothing.

This needs the sandbox to serve ServiceAccounts, rbac.authorization.k8s.io/v1,
policy/v1 and networking.k8s.io/v1 (discovery, GET, POST and PATCH with ?dryRun=All), to
create Namespaces, and to honour dryRun (deployments/README.md lists exactly what).
"""

from __future__ import annotations

import re

from oncall_sandbox import Sandbox
from tests.deploy.conftest import DEPLOYMENTS, KUBECTL, Manifest, kustomize, run

LOCAL = DEPLOYMENTS / "overlays" / "local"


def _kubectl(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    result = run(KUBECTL, "--kubeconfig", str(sandbox.kubeconfig_path), *args)
    return result.returncode, result.stdout + result.stderr


def _ref(obj: Manifest) -> str:
    """`kind.group/name` as kubectl prints it."""
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower()
    return (
        f"{kind}.{group}/{obj['metadata']['name']}"
        if group
        else f"{kind}/{obj['metadata']['name']}"
    )


def test_local_overlay_applies_with_server_dry_run_and_changes_nothing(sandbox: Sandbox) -> None:
    objects = kustomize(LOCAL)
    # A real API server refuses objects in a namespace that does not exist, dry run or not:
    # the namespace comes first, for real, as `kubectl apply` of the overlay would make it.
    namespace_file = DEPLOYMENTS / "base" / "oncall" / "namespace.yaml"
    code, out = _kubectl(sandbox, "apply", "--validate=false", "-f", str(namespace_file))
    assert code == 0, out

    # --validate=false: kubectl's client-side schema check needs /openapi/v2 (or v3), which
    # the sandbox does not serve; the API server still validates every object it admits.
    code, out = _kubectl(sandbox, "apply", "--dry-run=server", "--validate=false", "-k", str(LOCAL))
    assert code == 0, out
    for obj in objects:
        ref = re.escape(_ref(obj))
        assert re.search(
            rf"^{ref} (created|configured|unchanged) \(server dry run\)$", out, re.M
        ), f"{_ref(obj)} not applied:\n{out}"

    # Nothing was persisted: not the workloads, not the Roles in the remediated namespaces.
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        namespace = obj["metadata"].get("namespace", "")
        code, out = _kubectl(sandbox, "get", "-n", namespace, _ref(obj))
        assert code != 0 and "NotFound" in out, f"dry run created {_ref(obj)} in {namespace}"
