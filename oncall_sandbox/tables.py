"""Server-side printing: `meta.k8s.io/v1 Table` answers, which `kubectl get` asks for."""

from __future__ import annotations

from collections.abc import Callable

from oncall_sandbox.store import Obj
from oncall_sandbox.table_cells import Cells, age, columns, human_age
from oncall_sandbox.table_kinds import KIND_PRINTERS
from oncall_sandbox.table_workloads import WORKLOAD_PRINTERS


def _pod(obj: Obj) -> Cells:
    statuses = obj["status"].get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    total = len(obj["spec"].get("containers", []))
    phase = obj["status"].get("phase", "Pending")
    for status in statuses:
        waiting = status.get("state", {}).get("waiting")
        if waiting:
            phase = waiting.get("reason", phase)
    if not statuses and phase == "Pending" and obj["spec"].get("nodeName"):
        phase = "ContainerCreating"
    if obj["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    finished = [
        s["lastState"]["terminated"].get("finishedAt")
        for s in statuses
        if (s.get("lastState") or {}).get("terminated")
    ]
    shown = f"{restarts} ({human_age(max(finished))} ago)" if restarts and finished else restarts
    return [
        obj["metadata"]["name"],
        f"{ready}/{total}",
        phase,
        shown,
        age(obj),
        obj["status"].get("podIP", "<none>"),
        obj["spec"].get("nodeName", "<none>"),
    ]


def _workload_wide(obj: Obj) -> Cells:
    containers = obj["spec"]["template"]["spec"].get("containers", [])
    selector = obj["spec"].get("selector", {}).get("matchLabels", {})
    return [
        ",".join(c["name"] for c in containers),
        ",".join(c["image"] for c in containers),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
    ]


def _deployment(obj: Obj) -> Cells:
    status, replicas = obj.get("status", {}), obj["spec"].get("replicas", 1)
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{replicas}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(obj),
        *_workload_wide(obj),
    ]


def _replicaset(obj: Obj) -> Cells:
    status = obj.get("status", {})
    return [
        obj["metadata"]["name"],
        obj["spec"].get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        age(obj),
        *_workload_wide(obj),
    ]


def _service(obj: Obj) -> Cells:
    spec = obj["spec"]
    ports = ",".join(
        f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
        f"{p.get('protocol', 'TCP')}"
        for p in spec.get("ports", [])
    )
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", ""),
        "<none>",
        ports or "<none>",
        age(obj),
        selector or "<none>",
    ]


def _endpoints(obj: Obj) -> Cells:
    addresses = [
        f"{a['ip']}:{p['port']}"
        for subset in obj.get("subsets") or []
        for a in subset.get("addresses", [])
        for p in subset.get("ports", [])
    ]
    shown = ",".join(addresses[:3]) + (
        f" + {len(addresses) - 3} more..." if len(addresses) > 3 else ""
    )
    return [obj["metadata"]["name"], shown or "<none>", age(obj)]


def _event(obj: Obj) -> Cells:
    involved = obj["involvedObject"]
    return [
        human_age(obj.get("lastTimestamp")),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{involved['kind'].lower()}/{involved['name']}",
        obj.get("message", ""),
        obj["source"].get("component", ""),
        obj.get("count", 1),
    ]


def _configmap(obj: Obj) -> Cells:
    return [obj["metadata"]["name"], len(obj.get("data") or {}), age(obj)]


def _claim(obj: Obj) -> Cells:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    return [
        obj["metadata"]["name"],
        status.get("phase", "Pending"),
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", ""),
        ",".join({"ReadWriteOnce": "RWO"}.get(m, m) for m in status.get("accessModes", [])),
        spec.get("storageClassName", ""),
        "<unset>",
        age(obj),
    ]


def _volume(obj: Obj) -> Cells:
    spec, claim = obj.get("spec", {}), obj.get("spec", {}).get("claimRef") or {}
    return [
        obj["metadata"]["name"],
        (spec.get("capacity") or {}).get("storage", ""),
        ",".join({"ReadWriteOnce": "RWO"}.get(m, m) for m in spec.get("accessModes", [])),
        spec.get("persistentVolumeReclaimPolicy", "Delete"),
        obj.get("status", {}).get("phase", "Available"),
        f"{claim.get('namespace')}/{claim.get('name')}" if claim else "",
        spec.get("storageClassName", ""),
        "<unset>",
        "",
        age(obj),
    ]


def _namespace(obj: Obj) -> Cells:
    return [obj["metadata"]["name"], obj.get("status", {}).get("phase", "Active"), age(obj)]


PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj], Cells]]] = {
    "pods": (columns("Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", wide=2), _pod),
    "deployments": (
        columns(
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector",
            wide=3,
        ),
        _deployment,
    ),
    "replicasets": (
        columns(
            "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector", wide=3
        ),
        _replicaset,
    ),
    "services": (
        columns("Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector", wide=1),
        _service,
    ),
    "endpoints": (columns("Name", "Endpoints", "Age"), _endpoints),
    "events": (
        columns("Last Seen", "Type", "Reason", "Object", "Message", "Source", "Count", wide=2),
        _event,
    ),
    "namespaces": (columns("Name", "Status", "Age"), _namespace),
    "configmaps": (columns("Name", "Data", "Age"), _configmap),
    "persistentvolumeclaims": (
        columns(
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
        ),
        _claim,
    ),
    "persistentvolumes": (
        columns(
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
        ),
        _volume,
    ),
}


PRINTERS.update(KIND_PRINTERS)
PRINTERS.update(WORKLOAD_PRINTERS)


def as_table(plural: str, objects: list[Obj], resource_version: str, include: str) -> Obj:
    """A Table of `objects`; `include` is the includeObject parameter."""
    definitions, cells = PRINTERS.get(
        plural, (columns("Name", "Age"), lambda o: [o["metadata"]["name"], age(o)])
    )
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
