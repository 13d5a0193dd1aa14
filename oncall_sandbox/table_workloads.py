"""Table columns of StatefulSets, DaemonSets, ControllerRevisions and Nodes (`kubectl get`)."""

from __future__ import annotations

from collections.abc import Callable

from oncall_sandbox.selectors import selector_string
from oncall_sandbox.store import Obj
from oncall_sandbox.table_cells import Cells, age, columns

_ROLE_PREFIX = "node-role.kubernetes.io/"


def _containers(obj: Obj) -> Cells:
    containers = obj["spec"]["template"]["spec"].get("containers", [])
    return [",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers)]


def _statefulset(obj: Obj) -> Cells:
    ready = (obj.get("status") or {}).get("readyReplicas", 0)
    return [
        obj["metadata"]["name"],
        f"{ready}/{obj['spec'].get('replicas', 1)}",
        age(obj),
        *_containers(obj),
    ]


def _daemonset(obj: Obj) -> Cells:
    status = obj.get("status") or {}
    node_selector = obj["spec"]["template"]["spec"].get("nodeSelector") or {}
    match = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
    return [
        obj["metadata"]["name"],
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        selector_string(node_selector) or "<none>",
        age(obj),
        *_containers(obj),
        selector_string(match) or "<none>",
    ]


def _controller_revision(obj: Obj) -> Cells:
    owner = next(
        (r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None
    )
    controller = "<none>"
    if owner is not None:
        group = owner["apiVersion"].rsplit("/", 1)[0] if "/" in owner["apiVersion"] else ""
        kind = f"{owner['kind']}.{group}" if group else owner["kind"]
        controller = f"{kind.lower()}/{owner['name']}"
    return [obj["metadata"]["name"], controller, obj.get("revision", 0), age(obj)]


def _node_status(obj: Obj) -> str:
    ready = next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"),
        None,
    )
    shown = "Unknown" if ready is None else {"True": "Ready"}.get(ready["status"], "NotReady")
    if (obj.get("spec") or {}).get("unschedulable"):
        shown += ",SchedulingDisabled"
    return shown


def _node(obj: Obj) -> Cells:
    labels = obj["metadata"].get("labels") or {}
    roles = sorted(k[len(_ROLE_PREFIX) :] for k in labels if k.startswith(_ROLE_PREFIX))
    if labels.get("kubernetes.io/role"):
        roles = sorted({*roles, labels["kubernetes.io/role"]})
    status = obj.get("status") or {}
    addresses = {a["type"]: a["address"] for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        obj["metadata"]["name"],
        _node_status(obj),
        ",".join(roles) or "<none>",
        age(obj),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


WORKLOAD_PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj], Cells]]] = {
    "statefulsets": (
        columns("Name", "Ready", "Age", "Containers", "Images", wide=2),
        _statefulset,
    ),
    "daemonsets": (
        columns(
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector",
            wide=3,
        ),
        _daemonset,
    ),
    "controllerrevisions": (
        columns("Name", "Controller", "Revision", "Age"),
        _controller_revision,
    ),
    "nodes": (
        columns(
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime",
            wide=5,
        ),
        _node,
    ),
}
