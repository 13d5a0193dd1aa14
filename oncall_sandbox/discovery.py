"""The resources the sandbox serves and the discovery documents that announce them."""

from __future__ import annotations

from dataclasses import dataclass

from oncall_sandbox.store import Obj

READ = ("get", "list", "watch")
KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-oncall-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    """One REST resource: where it lives, what it is called, what may be done to it."""

    plural: str
    kind: str
    group: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        """`v1` or `apps/v1`."""
        return f"{self.group}/v1" if self.group else "v1"


WRITE = ("create", "update", "patch", "delete")
ALL = (*READ, *WRITE)
RBAC, POLICY, NETWORKING = "rbac.authorization.k8s.io", "policy", "networking.k8s.io"

RESOURCES = (
    Resource("namespaces", "Namespace", "", False, ALL, ("ns",)),
    Resource("pods", "Pod", "", True, (*READ, "delete"), ("po",)),
    Resource("services", "Service", "", True, ALL, ("svc",)),
    Resource("endpoints", "Endpoints", "", True, READ, ("ep",)),
    Resource("configmaps", "ConfigMap", "", True, ALL, ("cm",)),
    Resource("secrets", "Secret", "", True, ALL),
    Resource("serviceaccounts", "ServiceAccount", "", True, ALL, ("sa",)),
    Resource("persistentvolumeclaims", "PersistentVolumeClaim", "", True, READ, ("pvc",)),
    Resource("persistentvolumes", "PersistentVolume", "", False, READ, ("pv",)),
    Resource("events", "Event", "", True, READ, ("ev",)),
    Resource("deployments", "Deployment", "apps", True, ALL, ("deploy",)),
    Resource("replicasets", "ReplicaSet", "apps", True, READ, ("rs",)),
    Resource("statefulsets", "StatefulSet", "apps", True, ALL, ("sts",)),
    Resource("daemonsets", "DaemonSet", "apps", True, ALL, ("ds",)),
    Resource("controllerrevisions", "ControllerRevision", "apps", True, READ),
    Resource("nodes", "Node", "", False, READ, ("no",)),
    Resource("roles", "Role", RBAC, True, ALL),
    Resource("rolebindings", "RoleBinding", RBAC, True, ALL),
    Resource("clusterroles", "ClusterRole", RBAC, False, ALL),
    Resource("clusterrolebindings", "ClusterRoleBinding", RBAC, False, ALL),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", POLICY, True, ALL, ("pdb",)),
    Resource("networkpolicies", "NetworkPolicy", NETWORKING, True, ALL, ("netpol",)),
)
GROUPS = ("apps", RBAC, POLICY, NETWORKING)
SUBRESOURCES = {
    ("pods", "log"): ("get",),
    ("deployments", "status"): ("get",),
    ("deployments", "scale"): ("get", "patch", "update"),
    ("statefulsets", "status"): ("get", "patch", "update"),
    ("statefulsets", "scale"): ("get", "patch", "update"),
    ("daemonsets", "status"): ("get", "patch", "update"),
}
# What `kubectl get all` shows.
_ALL_CATEGORY = ("pods", "services", "deployments", "replicasets", "statefulsets", "daemonsets")
_SUBRESOURCE_KINDS = {"log": ("", "", "Pod"), "scale": ("autoscaling", "v1", "Scale")}


def find_resource(group: str, plural: str) -> Resource | None:
    """The served resource of that group and plural name, if any."""
    return next((r for r in RESOURCES if r.group == group and r.plural == plural), None)


def qualified(resource: Resource) -> str:
    """`deployments.apps`, `services`: how the API server names a resource in messages."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def api_versions(server_address: str) -> Obj:
    """`GET /api`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str) -> Obj:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def api_group_list() -> Obj:
    """`GET /apis`."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def api_group(group: str) -> Obj | None:
    """`GET /apis/<group>`."""
    if group not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def resource_list(group: str) -> Obj:
    """`GET /api/v1` or `GET /apis/<group>/v1`."""
    entries: list[Obj] = []
    for resource in RESOURCES:
        if resource.group != group:
            continue
        entries.append(
            {
                "name": resource.plural,
                "singularName": resource.kind.lower(),
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": list(resource.verbs),
                "shortNames": list(resource.short_names),
            }
        )
        if resource.plural in _ALL_CATEGORY:
            entries[-1]["categories"] = ["all"]
        for (plural, sub), verbs in SUBRESOURCES.items():
            if plural == resource.plural:
                sub_group, sub_version, kind = _SUBRESOURCE_KINDS.get(sub, ("", "", resource.kind))
                entry: Obj = {
                    "name": f"{plural}/{sub}",
                    "singularName": "",
                    "namespaced": True,
                    "kind": kind,
                    "verbs": list(verbs),
                }
                if sub_group:
                    entry.update({"group": sub_group, "version": sub_version})
                entries.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/v1" if group else "v1",
        "resources": entries,
    }
