"""Table columns of ServiceAccounts, Secrets, RBAC, PodDisruptionBudgets, NetworkPolicies."""

from __future__ import annotations

from collections.abc import Callable

from oncall_sandbox.selectors import selector_string
from oncall_sandbox.store import Obj
from oncall_sandbox.table_cells import Cells, age, columns


def _service_account(obj: Obj) -> Cells:
    return [obj["metadata"]["name"], len(obj.get("secrets") or []), age(obj)]


def _secret(obj: Obj) -> Cells:
    data = len(obj.get("data") or {})
    return [obj["metadata"]["name"], obj.get("type", "Opaque"), data, age(obj)]


def _role(obj: Obj) -> Cells:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp", "")]


def _binding(obj: Obj) -> Cells:
    ref, subjects = obj.get("roleRef") or {}, obj.get("subjects") or []

    def names(kind: str) -> str:
        found = [
            f"{s['namespace']}/{s['name']}" if kind == "ServiceAccount" else s["name"]
            for s in subjects
            if s.get("kind") == kind
        ]
        return ", ".join(found)

    return [
        obj["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(obj),
        names("User"),
        names("Group"),
        names("ServiceAccount"),
    ]


def _budget(obj: Obj) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        str(spec.get("minAvailable", "N/A")),
        str(spec.get("maxUnavailable", "N/A")),
        status.get("disruptionsAllowed", 0),
        age(obj),
    ]


def _network_policy(obj: Obj) -> Cells:
    selector = ((obj.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return [obj["metadata"]["name"], selector_string(selector) or "<none>", age(obj)]


_BINDING = (columns("Name", "Role", "Age", "Users", "Groups", "ServiceAccounts", wide=3), _binding)
KIND_PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj], Cells]]] = {
    "serviceaccounts": (columns("Name", "Secrets", "Age"), _service_account),
    "secrets": (columns("Name", "Type", "Data", "Age"), _secret),
    "roles": (columns("Name", "Created At"), _role),
    "clusterroles": (columns("Name", "Created At"), _role),
    "rolebindings": _BINDING,
    "clusterrolebindings": _BINDING,
    "poddisruptionbudgets": (
        columns("Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"),
        _budget,
    ),
    "networkpolicies": (columns("Name", "Pod-Selector", "Age"), _network_policy),
}
