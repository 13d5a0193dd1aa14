"""Defaulting and validation of the plain kinds: Namespace, Secret, RBAC, PDB, NetworkPolicy."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from oncall_sandbox.discovery import RBAC
from oncall_sandbox.store import Obj

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# What the API server puts in `status` when it creates an object no controller has seen yet.
INITIAL_STATUS: dict[str, Obj] = {
    "namespaces": {"phase": "Active"},
    "statefulsets": {"replicas": 0, "availableReplicas": 0},
    "daemonsets": {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    "poddisruptionbudgets": {
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "disruptionsAllowed": 0,
        "expectedPods": 0,
    },
}
# Kinds without a status at all.
NO_STATUS = frozenset(
    {
        "configmaps",
        "secrets",
        "serviceaccounts",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "networkpolicies",
    }
)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def name_causes(plural: str, name: str) -> list[str]:
    """What is wrong with a new object's name (RBAC names are path segments)."""
    if not name:
        return []
    if plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
        bad = name in (".", "..") or "/" in name or "%" in name
        return (
            [f'metadata.name: Invalid value: "{name}": may not contain "/" or "%"'] if bad else []
        )
    label = plural == "namespaces"
    pattern = _DNS_LABEL if label else _DNS_SUBDOMAIN
    if pattern.match(name) and len(name) <= (63 if label else 253):
        return []
    what = "RFC 1123 label" if label else "RFC 1123 subdomain"
    return [
        f'metadata.name: Invalid value: "{name}": a lowercase {what} must consist of lower '
        "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
        "character"
    ]


def _namespace(obj: Obj, current: Obj | None) -> list[str]:
    name = obj["metadata"].get("name", "")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    spec = obj.setdefault("spec", {})
    spec["finalizers"] = (current or {}).get("spec", {}).get("finalizers", ["kubernetes"])
    return []


def _secret(obj: Obj, current: Obj | None) -> list[str]:
    obj.setdefault("type", "Opaque")
    causes, data = [], obj.setdefault("data", {})
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            causes.append(f"data[{key}]: Invalid value: must be base64-encoded")
    if current is not None and current.get("type") != obj["type"]:
        causes.append(f'type: Invalid value: "{obj["type"]}": field is immutable')
    return causes


def _rules(obj: Obj, cluster: bool) -> list[str]:
    causes = []
    for i, rule in enumerate(obj.get("rules") or []):
        if not isinstance(rule, dict):
            causes.append(f"rules[{i}]: Invalid value")
            continue
        if not rule.get("verbs"):
            causes.append(
                f"rules[{i}].verbs: Required value: verbs must contain at least one value"
            )
        if rule.get("nonResourceURLs"):
            if not cluster:
                causes.append(
                    f"rules[{i}].nonResourceURLs: Invalid value: {_show(rule['nonResourceURLs'])}: "
                    "namespaced rules cannot apply to non-resource URLs"
                )
            continue
        if not rule.get("apiGroups"):
            causes.append(
                f"rules[{i}].apiGroups: Required value: resource rules must supply at least one "
                "api group"
            )
        if not rule.get("resources"):
            causes.append(
                f"rules[{i}].resources: Required value: resource rules must supply at least one "
                "resource"
            )
    return causes


def _binding(obj: Obj, current: Obj | None, kinds: tuple[str, ...]) -> list[str]:
    causes, ref = [], obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        causes.append("roleRef.name: Required value")
        ref = ref if isinstance(ref, dict) else {}
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(
            f'roleRef.kind: Unsupported value: "{ref.get("kind", "")}": supported values: '
            f"{supported}"
        )
    if ref.get("apiGroup") != RBAC:
        causes.append(
            f'roleRef.apiGroup: Unsupported value: "{ref.get("apiGroup", "")}": supported '
            f'values: "{RBAC}"'
        )
    for i, subject in enumerate(obj.get("subjects") or []):
        if not isinstance(subject, dict) or not subject.get("name"):
            causes.append(f"subjects[{i}].name: Required value")
            continue
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            if len(kinds) == 1 and not subject.get("namespace"):
                causes.append(f"subjects[{i}].namespace: Required value")
        elif kind in ("User", "Group"):
            subject.setdefault("apiGroup", RBAC)
        else:
            causes.append(
                f'subjects[{i}].kind: Unsupported value: "{kind}": supported values: '
                '"ServiceAccount", "User", "Group"'
            )
    if current is not None and current.get("roleRef") != obj.get("roleRef"):
        causes.append(f"roleRef: Invalid value: {_show(obj.get('roleRef'))}: cannot change roleRef")
    return causes


def _budget_value(field: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return []
    if isinstance(value, str) and re.fullmatch(r"\d+%", value) and int(value[:-1]) <= 100:
        return []
    return [
        f"spec.{field}: Invalid value: {_show(value)}: must be a non-negative integer or a "
        "percentage between 0% and 100%"
    ]


def _pdb(obj: Obj, current: Obj | None) -> list[str]:
    spec = obj.setdefault("spec", {})
    causes = _budget_value("minAvailable", spec.get("minAvailable"))
    causes += _budget_value("maxUnavailable", spec.get("maxUnavailable"))
    if "minAvailable" in spec and "maxUnavailable" in spec:
        causes.append(
            f"spec: Invalid value: {_show(spec)}: minAvailable and maxUnavailable cannot be both "
            "set"
        )
    return causes


def _network_policy(obj: Obj, current: Obj | None) -> list[str]:
    spec, causes = obj.setdefault("spec", {}), []
    if not isinstance(spec.get("podSelector"), dict):
        causes.append("spec.podSelector: Required value")
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or [] if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    types = spec.setdefault(
        "policyTypes", ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    )
    for i, kind in enumerate(types):
        if kind not in ("Ingress", "Egress"):
            causes.append(
                f'spec.policyTypes[{i}]: Unsupported value: "{kind}": supported values: '
                '"Ingress", "Egress"'
            )
    return causes


KIND_ADMISSION: dict[str, Callable[[Obj, Obj | None], list[str]]] = {
    "namespaces": _namespace,
    "secrets": _secret,
    "serviceaccounts": lambda obj, current: [],
    "roles": lambda obj, current: _rules(obj, cluster=False),
    "clusterroles": lambda obj, current: _rules(obj, cluster=True),
    "rolebindings": lambda obj, current: _binding(obj, current, ("Role", "ClusterRole")),
    "clusterrolebindings": lambda obj, current: _binding(obj, current, ("ClusterRole",)),
    "poddisruptionbudgets": _pdb,
    "networkpolicies": _network_policy,
}
