"""The StatefulSet controller: pods `<name>-0..N-1`, ControllerRevisions, ordered updates.

It follows kube-controller-manager's `StatefulSetControl` (OrderedReady by default): pods are
created lowest ordinal first, each once its predecessors are Running and Ready; removed and
updated highest ordinal first, one at a time. A pod that never becomes ready blocks the set,
so a rollback alone does not replace a crash-looping pod: it must be deleted (the documented
"forced rollback").
"""

from __future__ import annotations

import copy
import re
import uuid

from oncall_sandbox.events import EventRecorder
from oncall_sandbox.revisions import (
    HASH_LABEL,
    controlled_by,
    history_of,
    template_of,
    truncate_history,
    update_revision,
)
from oncall_sandbox.services import is_ready
from oncall_sandbox.store import Obj, Store

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_COMPONENT = "statefulset-controller"


def ordinal(sts_name: str, pod: Obj) -> int:
    """The ordinal in a pod's name (`web-2` -> 2), or -1 when it is not `<set>-<n>`."""
    match = re.fullmatch(rf"{re.escape(sts_name)}-(\d+)", pod["metadata"]["name"])
    return int(match.group(1)) if match else -1


def running_and_ready(pod: Obj) -> bool:
    """The controller's test before it moves on to the next ordinal."""
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


def _partition(sts: Obj) -> int:
    strategy = sts["spec"].get("updateStrategy") or {}
    return int((strategy.get("rollingUpdate") or {}).get("partition", 0))


def claim_name(claim: Obj, sts: Obj, index: int) -> str:
    """`<claim template>-<set>-<ordinal>`: the PersistentVolumeClaim of one pod."""
    return f"{claim['metadata']['name']}-{sts['metadata']['name']}-{index}"


class StatefulSetController:
    """Reconciles every StatefulSet into its pods, claims, revisions and status."""

    def __init__(self, store: Store, recorder: EventRecorder) -> None:
        self._store, self._events = store, recorder

    def reconcile(self) -> None:
        """One pass over every StatefulSet."""
        for sts in self._store.list("statefulsets"):
            self._sync(sts)

    def _sync(self, sts: Obj) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        history = history_of(self._store, sts)
        update = update_revision(self._store, sts, history, HASH_LABEL)
        history = history_of(self._store, sts)
        by_name = {r["metadata"]["name"]: r for r in history}
        current = by_name.get((sts.get("status") or {}).get("currentRevision", ""), update)
        pods = self._store.list("pods", ns, lambda p: controlled_by(p, sts))
        replicas = int(sts["spec"].get("replicas", 1))
        counts = self._counts(pods, current, update)
        slots: dict[int, Obj] = {}
        condemned: list[Obj] = []
        for pod in pods:
            index = ordinal(name, pod)
            if 0 <= index < replicas:
                slots[index] = pod
            elif index >= replicas:
                condemned.append(pod)
        condemned.sort(key=lambda p: ordinal(name, p))
        self._act(sts, slots, condemned, current, update, counts)
        status = self._status(sts, counts, current, update)
        self._store.update_status("statefulsets", ns, name, status)
        live = {status["currentRevision"], status["updateRevision"]}
        live |= {(p["metadata"].get("labels") or {}).get(REVISION_LABEL, "") for p in pods}
        truncate_history(self._store, sts, history, live)

    def _counts(self, pods: list[Obj], current: Obj, update: Obj) -> dict[str, int]:
        def at(revision: Obj) -> int:
            name = revision["metadata"]["name"]
            return sum(1 for p in pods if p["metadata"]["labels"].get(REVISION_LABEL) == name)

        ready = sum(1 for p in pods if running_and_ready(p))
        return {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": at(current),
            "updatedReplicas": at(update),
        }

    def _act(
        self,
        sts: Obj,
        slots: dict[int, Obj],
        condemned: list[Obj],
        current: Obj,
        update: Obj,
        counts: dict[str, int],
    ) -> None:
        """Create, delete or replace at most one pod (OrderedReady) or all at once (Parallel)."""
        ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        replicas = int(sts["spec"].get("replicas", 1))
        for index in range(replicas):
            pod = slots.get(index)
            if pod is None:
                revision = current if index < _partition(sts) else update
                self._create(sts, index, revision)
                counts["replicas"] += 1
                for key, counted in (("currentReplicas", current), ("updatedReplicas", update)):
                    if counted["metadata"]["name"] == revision["metadata"]["name"]:
                        counts[key] += 1
                if ordered:
                    return
            elif ordered and not running_and_ready(pod):
                return
        unhealthy = next((p for p in condemned if not running_and_ready(p)), None)
        for pod in reversed(condemned):
            if ordered and not running_and_ready(pod) and pod is not unhealthy:
                return
            self._delete(sts, pod)
            if ordered:
                return
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            return  # OnDelete: pods are replaced when someone deletes them
        wanted = update["metadata"]["name"]
        for index in range(replicas - 1, _partition(sts) - 1, -1):
            pod = slots.get(index)
            if pod is None:
                continue
            if pod["metadata"]["labels"].get(REVISION_LABEL) != wanted:
                self._delete(sts, pod)
                return
            if not running_and_ready(pod):
                return

    def _status(self, sts: Obj, counts: dict[str, int], current: Obj, update: Obj) -> Obj:
        status: Obj = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": counts["replicas"],
            "currentRevision": current["metadata"]["name"],
            "updateRevision": update["metadata"]["name"],
            "collisionCount": 0,
            "availableReplicas": counts["availableReplicas"],
        }
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if counts[key]:
                status[key] = counts[key]  # omitempty in the API
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if (
            strategy == "RollingUpdate"
            and counts["updatedReplicas"] == counts["replicas"]
            and counts["readyReplicas"] == counts["replicas"]
        ):
            # The rollout is complete: the update revision becomes the current one.
            status["currentRevision"] = status["updateRevision"]
            status["currentReplicas"] = counts["updatedReplicas"]
            if not status["currentReplicas"]:
                del status["currentReplicas"]
        return status

    def _create(self, sts: Obj, index: int, revision: Obj) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        for claim in sts["spec"].get("volumeClaimTemplates") or []:
            self._claim(sts, claim, index)
        pod = self._store.create("pods", ns, _pod(sts, index, revision))
        message = f"create Pod {pod['metadata']['name']} in StatefulSet {name} successful"
        self._events.record(sts, "SuccessfulCreate", message, _COMPONENT)

    def _delete(self, sts: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self._store.delete("pods", meta["namespace"], meta["name"])
        message = f"delete Pod {meta['name']} in StatefulSet {sts['metadata']['name']} successful"
        self._events.record(sts, "SuccessfulDelete", message, _COMPONENT)

    def _claim(self, sts: Obj, claim: Obj, index: int) -> None:
        """The pod's PersistentVolumeClaim, provisioned and bound at once (kept on scale-down)."""
        ns = sts["metadata"]["namespace"]
        name = claim_name(claim, sts, index)
        if self._store.find("persistentvolumeclaims", ns, name) is not None:
            return
        spec = copy.deepcopy(claim.get("spec") or {})
        spec.setdefault("storageClassName", "standard")
        spec.setdefault("volumeMode", "Filesystem")
        spec["volumeName"] = f"pvc-{uuid.uuid4()}"
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        self._store.create(
            "persistentvolumeclaims",
            ns,
            {
                "kind": "PersistentVolumeClaim",
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": dict((sts["spec"].get("selector") or {}).get("matchLabels") or {}),
                    "annotations": {"pv.kubernetes.io/bind-completed": "yes"},
                    "finalizers": ["kubernetes.io/pvc-protection"],
                },
                "spec": spec,
                "status": {
                    "phase": "Bound",
                    "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                    "capacity": {"storage": storage},
                },
            },
        )
        self._events.record(
            sts,
            "SuccessfulCreate",
            f"create Claim {name} Pod {sts['metadata']['name']}-{index} in StatefulSet "
            f"{sts['metadata']['name']} success",
            _COMPONENT,
        )


def _pod(sts: Obj, index: int, revision: Obj) -> Obj:
    """Pod `<set>-<index>` from the template of `revision`, as the controller stamps it."""
    name = f"{sts['metadata']['name']}-{index}"
    template = template_of(revision)
    spec = template.get("spec") or {}
    spec.setdefault("serviceAccountName", "default")
    spec["hostname"] = name
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    volumes = [v for v in spec.get("volumes") or []]
    for claim in sts["spec"].get("volumeClaimTemplates") or []:
        claim_volume = claim["metadata"]["name"]
        volumes = [v for v in volumes if v.get("name") != claim_volume]
        volumes.append(
            {
                "name": claim_volume,
                "persistentVolumeClaim": {"claimName": claim_name(claim, sts, index)},
            }
        )
    if volumes:
        spec["volumes"] = volumes
    meta = template.get("metadata") or {}
    labels = {
        **(meta.get("labels") or {}),
        REVISION_LABEL: revision["metadata"]["name"],
        POD_NAME_LABEL: name,
        POD_INDEX_LABEL: str(index),
    }
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": sts["metadata"]["name"],
        "uid": sts["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pod_meta: Obj = {"name": name, "labels": labels, "ownerReferences": [owner]}
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": pod_meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
