"""The Kubernetes manifests as kustomize renders them: kinds, secrets, least privilege."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.deploy.conftest import DEPLOYMENTS, REPO, Manifest, find, kustomize

SECRET = "oncall-secrets"
# The keys of the Secret an operator creates (deployments/README.md documents each).
SECRET_KEYS = {
    "ONCALL_INTAKE_TOKEN",
    "ONCALL_SLACK_BOT_TOKEN",
    "ONCALL_SLACK_SIGNING_SECRET",
    "ONCALL_PAGERDUTY_ROUTING_KEY",
    "ONCALL_PAGERDUTY_WEBHOOK_SECRET",
    "ONCALL_DATABASE_URL",
}
EXPECTED = {
    ("Namespace", "oncall", None),
    ("ConfigMap", "oncall-settings", "oncall"),
    ("ConfigMap", "oncall-worker-kubeconfig", "oncall"),
    ("ServiceAccount", "oncall-intake", "oncall"),
    ("ServiceAccount", "oncall-remediation", "oncall"),
    ("Deployment", "oncall-intake", "oncall"),
    ("Deployment", "oncall-worker", "oncall"),
    ("Service", "oncall-intake", "oncall"),
    ("PodDisruptionBudget", "oncall-intake", "oncall"),
    ("NetworkPolicy", "default-deny", "oncall"),
    ("NetworkPolicy", "oncall-intake", "oncall"),
    ("NetworkPolicy", "oncall-worker", "oncall"),
    ("Role", "oncall-remediation", "gremlinsai"),
    ("RoleBinding", "oncall-remediation", "gremlinsai"),
    ("Role", "oncall-remediation", "cronos-ai"),
    ("RoleBinding", "oncall-remediation", "cronos-ai"),
}
# PROTOCOLS.md, "Least-privilege Role for remediation": exactly these, per namespace.
ROLE = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"get", "list"},
    ("apps", "deployments/scale"): {"get", "update", "patch"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "events"): {"get", "list", "watch"},
    ("", "pods/log"): {"get"},
    ("", "services"): {"get", "patch"},
}
# "configmaps get/patch only where a playbook needs it": the crash-loop playbook, CRONOS.
ROLES = {
    "gremlinsai": ROLE,
    "cronos-ai": {**ROLE, ("", "configmaps"): {"get", "patch"}},
}
SIZES = {"local": ("dev", 1, 1), "production": ("0.1.0", 3, 2)}  # tag, intake, worker replicas


def _role_rules(role: Manifest) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def _containers(objects: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (o["metadata"]["name"], c)
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def test_overlays_render_the_expected_objects(rendered: tuple[str, list[Manifest]]) -> None:
    _, objects = rendered
    kinds = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects}
    assert kinds == EXPECTED


def test_no_secret_is_embedded(rendered: tuple[str, list[Manifest]]) -> None:
    _, objects = rendered
    assert not [o for o in objects if o["kind"] == "Secret"]
    secretish = re.compile(r"TOKEN|SECRET|PASSWORD|ROUTING_KEY|DATABASE_URL|DSN", re.I)
    for o in objects:
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "oncall-settings":
            assert not [k for k in o["data"] if secretish.search(k)]
    referenced = set()
    for name, container in _containers(objects):
        for env in container.get("env", []):
            if secretish.search(env["name"]):
                assert "value" not in env, f"{name}: {env['name']} is inline"
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == SECRET, env
                referenced.add(ref["key"])
        for source in container.get("envFrom", []):
            assert "secretRef" not in source  # every secret key is named where it is used
    assert referenced == SECRET_KEYS
    readme = (DEPLOYMENTS / "README.md").read_text()
    assert all(key in readme for key in SECRET_KEYS)


def test_remediation_roles_grant_exactly_the_protocol_verbs(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendered
    roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
    assert {r["metadata"]["namespace"] for r in roles} == set(ROLES)
    for namespace, expected in ROLES.items():
        role = find(objects, "Role", "oncall-remediation", namespace)
        assert _role_rules(role) == expected, namespace
        binding = find(objects, "RoleBinding", "oncall-remediation", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "oncall-remediation",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "oncall-remediation", "namespace": "oncall"}
        ]
    # The worker runs the playbooks, so it is the identity the Roles bind; the intake has none.
    pods = {
        name: find(objects, "Deployment", name)["spec"]["template"]["spec"]
        for name in ("oncall-worker", "oncall-intake")
    }
    assert pods["oncall-worker"]["serviceAccountName"] == "oncall-remediation"
    assert pods["oncall-intake"]["serviceAccountName"] == "oncall-intake"
    assert pods["oncall-intake"]["automountServiceAccountToken"] is False


_VERB = "(?:get|list|watch|create|update|patch|delete)"


def _protocol_role(text: str) -> dict[tuple[str, str], set[str]]:
    line = next(ln for ln in text.splitlines() if "Least-privilege Role for remediation" in ln)
    body = line.split(":", 1)[1] + " " + text.split(line, 1)[1].split("\n-", 1)[0]
    granted: dict[tuple[str, str], set[str]] = {}
    for part in body.replace("\n", " ").split(";"):
        match = re.match(rf"\s*(.+?)\s+({_VERB}(?:/{_VERB})*)\b", part)
        assert match, part
        for resource in match[1].split(","):
            resource = resource.strip()
            group = "apps" if resource.split("/")[0] in ("deployments", "replicasets") else ""
            granted[(group, resource)] = set(match[2].split("/"))
    return granted


def test_the_role_above_is_the_one_protocols_md_states() -> None:
    # shared/ sits beside the repository (as in CI); without it this cross-check is moot.
    path = Path(os.environ.get("ONCALL_PROTOCOLS_MD", REPO.parent / "shared" / "PROTOCOLS.md"))
    if not path.exists() and not IN_CI:
        pytest.skip(f"{path} not present")
    assert _protocol_role(path.read_text()) == ROLES["cronos-ai"]


def test_intake_runs_hardened_with_probes_behind_a_disruption_budget(
    rendered: tuple[str, list[Manifest]],
) -> None:
    overlay, objects = rendered
    tag, intake_replicas, worker_replicas = SIZES[overlay]
    intake = find(objects, "Deployment", "oncall-intake")
    assert intake["spec"]["replicas"] == intake_replicas
    assert find(objects, "Deployment", "oncall-worker")["spec"]["replicas"] == worker_replicas
    pod = intake["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["oncall", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name, c in _containers(objects):
        assert c["image"] == f"ghcr.io/oncall/oncall:{tag}", name
        assert {"requests", "limits"} <= set(c["resources"]), name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    service = find(objects, "Service", "oncall-intake")
    assert service["spec"]["selector"] == intake["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8080
    budget = find(objects, "PodDisruptionBudget", "oncall-intake")["spec"]
    assert budget["selector"] == intake["spec"]["selector"]
    # A budget must leave room for a drain: fewer pods required than there are.
    assert budget.get("minAvailable", intake_replicas - budget.get("maxUnavailable", 0)) < (
        intake_replicas
    )


def test_the_intake_takes_webhooks_only_from_alertmanager_and_the_ingress(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendered
    deny = find(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    intake = find(objects, "NetworkPolicy", "oncall-intake")["spec"]
    (ingress,) = intake["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    sources = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in ingress["from"]
    }
    assert sources == {"monitoring", "ingress-nginx"}
    egress_ports = {p["port"] for rule in intake["egress"] for p in rule.get("ports", [])}
    assert egress_ports == {53, 4200, 5432, 443}
    worker = find(objects, "NetworkPolicy", "oncall-worker")["spec"]
    assert "ingress" not in worker and "Ingress" in worker["policyTypes"]


def test_settings_point_at_the_shared_prefect_server(rendered: tuple[str, list[Manifest]]) -> None:
    _, objects = rendered
    data = find(objects, "ConfigMap", "oncall-settings")["data"]
    assert re.fullmatch(
        r"http://prefect-server\.prefect\.svc[\w.]*:4200/api", data["PREFECT_API_URL"]
    )
    assert all(k.startswith(("ONCALL_", "PREFECT_", "DO_NOT_TRACK")) for k in data)


def _secret_env(container: Manifest) -> dict[str, Manifest]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_every_prefect_client_authenticates_from_the_secret(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendered
    for name in ("oncall-intake", "oncall-worker"):
        (container,) = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        for variable in ("PREFECT_API_AUTH_STRING", "ONCALL_APPROVAL_KEY"):
            ref = _secret_env(container)[variable]
            assert ref == {"name": "oncall-secrets", "key": variable}, (name, variable)
            assert not ref.get("optional"), name  # no pod runs open or unattested


def test_the_stock_prefect_worker_component_renders(tmp_path: Path) -> None:
    overlay = tmp_path / "with-stock-worker"
    overlay.mkdir()
    base = os.path.relpath(DEPLOYMENTS / "overlays" / "production", overlay)
    component = os.path.relpath(DEPLOYMENTS / "components" / "prefect-kubernetes-worker", overlay)
    (overlay / "kustomization.yaml").write_text(f"resources: [{base}]\ncomponents: [{component}]\n")
    objects = kustomize(overlay)
    worker = find(objects, "Deployment", "prefect-worker", "oncall")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "prefect", "worker", "start", "--pool", "oncall-k8s", "--type", "kubernetes",
    ]  # fmt: skip
    assert "PREFECT_API_AUTH_STRING" in _secret_env(container)
    # Its own Role is about Jobs in `oncall`; the remediation Roles are unchanged.
    role = find(objects, "Role", "prefect-worker", "oncall")
    assert ("batch", "jobs") in _role_rules(role)
    assert _role_rules(find(objects, "Role", "oncall-remediation", "gremlinsai")) == ROLE
