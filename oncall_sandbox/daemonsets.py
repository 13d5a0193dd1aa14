"""The DaemonSet controller: one pod per node that fits, ControllerRevisions, rolling updates.

As kube-controller-manager's: each pod is pinned to its node by required node affinity
(`metadata.name`) and carries the revision's hash in `controller-revision-hash`. A rolling
update deletes the old pods that are unavailable first, then up to `maxUnavailable` of the
available ones, and creates the new pod once a node has none (maxSurge 0).
"""

from __future__ import annotations

import copy
import math
import secrets
import string

from oncall_sandbox.events import EventRecorder
from oncall_sandbox.nodes import fits, is_schedulable
from oncall_sandbox.revisions import (
    controlled_by,
    history_of,
    template_of,
    truncate_history,
    update_revision,
)
from oncall_sandbox.services import is_ready
from oncall_sandbox.store import Obj, Store

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
_COMPONENT = "daemonset-controller"
# What the controller lets every daemon pod tolerate, so a node's trouble does not evict it.
_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def _max_unavailable(ds: Obj, desired: int) -> int:
    rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(math.ceil(desired * int(value[:-1]) / 100), 1)
    return max(int(value), 1)


def pinned_node(pod: Obj) -> str:
    """The node a daemon pod runs on, or is pinned to by its node affinity."""
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    affinity = (pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return ""


class DaemonSetController:
    """Reconciles every DaemonSet into one pod per eligible node, its revisions and status."""

    def __init__(self, store: Store, recorder: EventRecorder) -> None:
        self._store, self._events = store, recorder

    def reconcile(self) -> None:
        """One pass over every DaemonSet."""
        for ds in self._store.list("daemonsets"):
            self._sync(ds)

    def _sync(self, ds: Obj) -> None:
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        history = history_of(self._store, ds)
        update = update_revision(self._store, ds, history, HASH_LABEL)
        history = history_of(self._store, ds)
        wanted_hash = update["metadata"]["labels"][HASH_LABEL]
        template = ds["spec"]["template"].get("spec") or {}
        eligible = [
            n["metadata"]["name"]
            for n in self._store.list("nodes")
            if is_schedulable(n) and fits(template, n)
        ]
        pods = self._store.list("pods", ns, lambda p: controlled_by(p, ds))
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(pinned_node(pod), []).append(pod)
        for node, on_node in by_node.items():
            if node not in eligible:
                for pod in on_node:
                    self._delete(ds, pod)
            else:
                on_node.sort(key=lambda p: (not is_ready(p), p["metadata"]["creationTimestamp"]))
                for extra in on_node[1:]:
                    self._delete(ds, extra)
                del on_node[1:]
        for node in eligible:
            if not by_node.get(node):
                by_node[node] = [self._create(ds, node, update)]
        self._roll(ds, {n: by_node[n][0] for n in eligible}, wanted_hash)
        self._write_status(ds, eligible, wanted_hash)
        live = {update["metadata"]["name"]}
        live |= {f"{name}-{p['metadata']['labels'].get(HASH_LABEL, '')}" for p in pods}
        truncate_history(self._store, ds, history, live)

    def _roll(self, ds: Obj, pods: dict[str, Obj], wanted_hash: str) -> None:
        strategy = (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            return  # OnDelete: old pods are replaced once someone deletes them
        old = [p for p in pods.values() if p["metadata"]["labels"].get(HASH_LABEL) != wanted_hash]
        unavailable = sum(1 for p in pods.values() if not is_ready(p))
        budget = _max_unavailable(ds, len(pods)) - unavailable
        for pod in sorted(old, key=is_ready):
            if is_ready(pod):
                if budget <= 0:
                    break
                budget -= 1
            self._delete(ds, pod)

    def _write_status(self, ds: Obj, eligible: list[str], wanted_hash: str) -> None:
        meta = ds["metadata"]
        pods = self._store.list("pods", meta["namespace"], lambda p: controlled_by(p, ds))
        scheduled = {pinned_node(p) for p in pods}
        on_eligible = [p for p in pods if pinned_node(p) in eligible]
        ready = sum(1 for p in on_eligible if is_ready(p))
        updated = {
            pinned_node(p)
            for p in on_eligible
            if p["metadata"]["labels"].get(HASH_LABEL) == wanted_hash
        }
        status: Obj = {
            "currentNumberScheduled": len(scheduled & set(eligible)),
            "numberMisscheduled": len(scheduled - set(eligible)),
            "desiredNumberScheduled": len(eligible),
            "numberReady": ready,
            "observedGeneration": meta.get("generation", 1),
        }
        optional = {
            "updatedNumberScheduled": len(updated),
            "numberAvailable": ready,
            "numberUnavailable": max(len(eligible) - ready, 0),
        }
        status.update({k: v for k, v in optional.items() if v})  # omitempty in the API
        self._store.update_status("daemonsets", meta["namespace"], meta["name"], status)

    def _create(self, ds: Obj, node: str, revision: Obj) -> Obj:
        pod = self._store.create("pods", ds["metadata"]["namespace"], _pod(ds, node, revision))
        message = f"Created pod: {pod['metadata']['name']}"
        self._events.record(ds, "SuccessfulCreate", message, _COMPONENT)
        return pod

    def _delete(self, ds: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self._store.delete("pods", meta["namespace"], meta["name"])
        self._events.record(ds, "SuccessfulDelete", f"Deleted pod: {meta['name']}", _COMPONENT)


def _pod(ds: Obj, node: str, revision: Obj) -> Obj:
    """A daemon pod for `node` from the template of `revision`."""
    template = template_of(revision)
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("affinity", {})["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        }
    }
    tolerations = list(spec.get("tolerations") or [])
    for key, effect in _TOLERATIONS:
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    spec["tolerations"] = tolerations
    meta = template.get("metadata") or {}
    name = ds["metadata"]["name"]
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    labels = {
        **(meta.get("labels") or {}),
        HASH_LABEL: revision["metadata"]["labels"][HASH_LABEL],
        GENERATION_LABEL: str(ds["metadata"].get("generation", 1)),
    }
    owner = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": name,
        "uid": ds["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pod_meta: Obj = {
        "name": f"{name}-{suffix}",
        "generateName": f"{name}-",
        "labels": labels,
        "ownerReferences": [owner],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": pod_meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
