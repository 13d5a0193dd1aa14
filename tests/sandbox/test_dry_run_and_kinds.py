"""dryRun on every verb, the RBAC, policy and networking kinds, a real server's rejections."""

from __future__ import annotations

import json

import httpx
from sandbox_cluster import BLUE, NAMESPACE, SERVICE, Cluster

ROLE_URL = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"
DRY = {"dryRun": "All", "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Ignore"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "reader"},
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
}


def _url(cluster: Cluster, path: str) -> str:
    return cluster.sb.api_url + path


def test_dry_run_create_answers_the_object_and_saves_nothing(cluster: Cluster) -> None:
    before = cluster.sb.store.resource_version
    url = _url(cluster, ROLE_URL.format(ns=NAMESPACE))
    created = httpx.post(url, params=DRY, json=ROLE)
    assert created.status_code == 201, created.text
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["namespace"] == NAMESPACE
    assert httpx.get(f"{url}/reader").status_code == 404
    deployment = json.loads(cluster.kubectl("get", "deploy", BLUE, "-o", "json").stdout)
    deployment["metadata"] = {"name": "copy", "namespace": NAMESPACE}
    copy = httpx.post(
        _url(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
        params=DRY,
        json=deployment,
    )
    assert copy.status_code == 201, copy.text
    assert cluster.sb.store.resource_version == before  # no object, no pod, no event
    assert cluster.sb.store.find("deployments", NAMESPACE, "copy") is None


def test_dry_run_patch_update_and_delete_change_nothing(cluster: Cluster) -> None:
    base = _url(cluster, f"/api/v1/namespaces/{NAMESPACE}/services/{SERVICE}")
    current = httpx.get(base).json()
    patch = {"spec": {"selector": {"version": "green"}}}
    patched = httpx.patch(base, params=DRY, content=json.dumps(patch), headers=SMP)
    assert patched.status_code == 200 and patched.json()["spec"]["selector"]["version"] == "green"
    replaced = dict(current, metadata={**current["metadata"], "labels": {"x": "y"}})
    assert httpx.put(base, params=DRY, json=replaced).json()["metadata"]["labels"] == {"x": "y"}
    assert httpx.delete(base, params=DRY).status_code == 200
    assert httpx.get(base).json() == current
    out = cluster.kubectl("delete", "deploy", BLUE, "--dry-run=server").stdout
    assert "(server dry run)" in out
    cluster.kubectl("delete", "ns", NAMESPACE, "--dry-run=server")
    cluster.kubectl("scale", "deploy", BLUE, "--replicas=7", "--dry-run=server")
    spec = json.loads(cluster.kubectl("get", "deploy", BLUE, "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 3
    assert httpx.get(base).status_code == 200


def test_new_kinds_through_kubectl(cluster: Cluster) -> None:
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    cluster.kubectl("create", "rolebinding", "rb", "--role=pod-reader", "--serviceaccount=x:bot")
    cluster.kubectl("create", "sa", "bot")
    cluster.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b")
    cluster.kubectl("create", "pdb", "budget", "--selector=app=x", "--min-available=0")
    out = cluster.kubectl("get", "role,rolebinding,sa,secret,pdb").stdout
    for name in (
        "role.rbac.authorization.k8s.io/pod-reader",
        "rolebinding.rbac.authorization.k8s.io/rb",
        "serviceaccount/bot",
        "secret/s1",
        "poddisruptionbudget.policy/budget",
    ):
        assert name in out
    pdb = json.loads(cluster.kubectl("get", "pdb", "budget", "-o", "json").stdout)
    assert pdb["spec"]["minAvailable"] == 0
    role = json.loads(cluster.kubectl("get", "role", "pod-reader", "-o", "json").stdout)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    cluster.kubectl("delete", "role", "pod-reader")
    assert cluster.kubectl("get", "role", "pod-reader", check=False).returncode == 1
    api = cluster.kubectl("api-resources").stdout
    for line in ("poddisruptionbudgets", "networkpolicies", "rolebindings", "serviceaccounts"):
        assert line in api


def test_namespaces_are_created_and_deleted_for_real(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "scratch")
    cluster.kubectl("create", "configmap", "c", "-n", "scratch", "--from-literal=a=b")
    cluster.kubectl("delete", "namespace", "scratch")
    assert cluster.sb.store.list("configmaps", "scratch") == []
    assert cluster.kubectl("get", "ns", "scratch", check=False).returncode == 1


def test_rejections_of_a_real_server(cluster: Cluster) -> None:
    missing = httpx.post(_url(cluster, ROLE_URL.format(ns="oncall")), params=DRY, json=ROLE)
    assert missing.status_code == 404
    assert missing.json()["message"] == 'namespaces "oncall" not found'
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "both"},
        "spec": {"minAvailable": 1, "maxUnavailable": 1},
    }
    url = _url(cluster, f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets")
    assert httpx.post(url, json=pdb).status_code == 422
    cluster.kubectl("create", "rolebinding", "rb", "--clusterrole=view", "--user=bob")
    changed = cluster.kubectl(
        "patch",
        "rolebinding",
        "rb",
        "--type=merge",
        "-p",
        '{"roleRef":{"name":"edit"}}',
        check=False,
    )
    assert changed.returncode == 1 and "cannot change roleRef" in changed.stderr
    deployment = json.loads(cluster.kubectl("get", "deploy", BLUE, "-o", "json").stdout)
    deployment["metadata"] = {"name": "mismatch"}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    url = _url(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
    refused = httpx.post(url, params=DRY, json=deployment)
    assert refused.status_code == 422 and "does not match" in refused.json()["message"]


def test_default_validation_uses_openapi_v3(cluster: Cluster) -> None:
    root = httpx.get(_url(cluster, "/openapi/v3")).json()["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/policy/v1"} <= set(root)
    manifest = json.dumps({**ROLE, "metadata": {"name": "validated", "namespace": NAMESPACE}})
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False, stdin=manifest)
    assert result.returncode == 0, result.stderr
    assert "created (server dry run)" in result.stdout
