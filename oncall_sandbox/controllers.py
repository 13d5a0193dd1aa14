"""Deployment and ReplicaSet controllers: revisions, rolling updates, status."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import secrets
import string
import time

from oncall_sandbox.events import EventRecorder
from oncall_sandbox.services import is_ready
from oncall_sandbox.store import Obj, Store, now_rfc3339
from oncall_sandbox.workloads import SimClock

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    """A stable 10-character hash of a pod template (its hash label excluded)."""
    digest = hashlib.sha256(json.dumps(strip_hash(template), sort_keys=True).encode()).digest()
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in digest[:10])


def strip_hash(template: Obj) -> Obj:
    """A copy of a pod template without the `pod-template-hash` label."""
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return clean


def revision(rs: Obj) -> int:
    """The `deployment.kubernetes.io/revision` of a ReplicaSet."""
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))


def owned_by(obj: Obj, owner: Obj) -> bool:
    """True when `owner` is the controller of `obj`."""
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("controller") and r["uid"] == owner["metadata"]["uid"] for r in refs)


def owner_reference(owner: Obj) -> Obj:
    """A controller ownerReference pointing at `owner`."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def rollout_complete(deployment: Obj) -> bool:
    """`kubectl rollout status`'s test for a finished rollout."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    return (
        int(deployment["metadata"].get("generation", 0)) <= int(status.get("observedGeneration", 0))
        and updated == desired
        and int(status.get("replicas", 0)) == updated
        and int(status.get("availableReplicas", 0)) == updated
    )


def _scaled(value: object, desired: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = desired * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value) if isinstance(value, int | str) else 0


class DeploymentController:
    """Reconciles Deployments into ReplicaSets and ReplicaSets into Pods."""

    def __init__(self, store: Store, recorder: EventRecorder, clock: SimClock) -> None:
        self._store, self._events, self._clock = store, recorder, clock
        self._progress: dict[str, tuple[tuple[object, ...], float]] = {}

    def _timed_out(self, d: Obj, new_rs: Obj, counts: dict[str, int], complete: bool) -> bool:
        """No progress for progressDeadlineSeconds (simulated) while the rollout is unfinished."""
        uid, now = d["metadata"]["uid"], time.monotonic()
        signature = (new_rs["metadata"]["name"], *sorted(counts.items()))
        seen = self._progress.get(uid)
        if seen is None or seen[0] != signature or complete:
            self._progress[uid] = (signature, now)
            return False
        deadline = float(d["spec"].get("progressDeadlineSeconds", 600))
        return self._clock.sim(now - seen[1]) > deadline

    def reconcile(self) -> None:
        """One pass over every Deployment and ReplicaSet."""
        for deployment in self._store.list("deployments"):
            self._sync_deployment(deployment)
        for rs in self._store.list("replicasets"):
            self._sync_replicaset(rs)

    def _scale(self, deployment: Obj, rs: Obj, replicas: int) -> Obj:
        old = int(rs["spec"].get("replicas", 0))
        if old == replicas:
            return rs
        rs["spec"]["replicas"] = replicas
        rs = self._store.update("replicasets", rs["metadata"]["namespace"], rs, check_rv=False)
        verb = "up" if replicas > old else "down"
        message = f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}"
        self._events.record(deployment, "ScalingReplicaSet", message, "deployment-controller")
        return rs

    def _new_replicaset(self, deployment: Obj, revision_number: int) -> Obj:
        template = strip_hash(deployment["spec"]["template"])
        pod_hash = template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        meta = deployment["metadata"]
        return self._store.create(
            "replicasets",
            meta["namespace"],
            {
                "kind": "ReplicaSet",
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": f"{meta['name']}-{pod_hash}",
                    "namespace": meta["namespace"],
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {
                        REVISION: str(revision_number),
                        "deployment.kubernetes.io/desired-replicas": str(
                            deployment["spec"].get("replicas", 1)
                        ),
                    },
                    "ownerReferences": [owner_reference(deployment)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": template},
                "status": {"replicas": 0},
            },
        )

    def _sync_deployment(self, d: Obj) -> None:
        ns = d["metadata"]["namespace"]
        all_rs = self._store.list("replicasets", ns, lambda rs: owned_by(rs, d))
        wanted = strip_hash(d["spec"]["template"])
        max_revision = max((revision(rs) for rs in all_rs), default=0)
        new_rs = next((rs for rs in all_rs if strip_hash(rs["spec"]["template"]) == wanted), None)
        if new_rs is None:
            new_rs = self._new_replicaset(d, max_revision + 1)
            all_rs.append(new_rs)
        elif revision(new_rs) < max_revision:
            # A rollback reuses the old ReplicaSet and moves it to the newest revision.
            new_rs["metadata"]["annotations"][REVISION] = str(max_revision + 1)
            new_rs = self._store.update("replicasets", ns, new_rs, check_rv=False)
        old_rs = [rs for rs in all_rs if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        # The Deployment carries its current revision too (`rollout undo` patches it).
        self._store.annotate(
            "deployments", ns, d["metadata"]["name"], REVISION, str(revision(new_rs))
        )
        if not d["spec"].get("paused"):
            new_rs, old_rs = self._roll(d, new_rs, old_rs)
        self._write_status(d, new_rs, old_rs)
        self._clean_history(d, old_rs)

    def _roll(self, d: Obj, new_rs: Obj, old_rs: list[Obj]) -> tuple[Obj, list[Obj]]:
        desired = int(d["spec"].get("replicas", 1))
        strategy = d["spec"].get("strategy") or {}
        if strategy.get("type") == "Recreate":
            old_rs = [self._scale(d, rs, 0) for rs in old_rs]
            if all(int(rs["status"].get("replicas", 0)) == 0 for rs in old_rs):
                new_rs = self._scale(d, new_rs, desired)
            return new_rs, old_rs
        rolling = strategy.get("rollingUpdate") or {}
        surge = _scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in [new_rs, *old_rs])
        current = int(new_rs["spec"].get("replicas", 0))
        if current > desired:
            new_rs = self._scale(d, new_rs, desired)
        elif current < desired and desired + surge - total > 0:
            new_rs = self._scale(d, new_rs, min(desired, current + desired + surge - total))
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in [new_rs, *old_rs])
        new_unavailable = int(new_rs["spec"]["replicas"]) - int(
            new_rs["status"].get("availableReplicas", 0)
        )
        budget = total - (desired - unavailable) - max(new_unavailable, 0)
        scaled_old = []
        for rs in sorted(old_rs, key=revision):
            replicas = int(rs["spec"].get("replicas", 0))
            step = min(replicas, max(budget, 0))
            if step:
                rs = self._scale(d, rs, replicas - step)
                budget -= step
            scaled_old.append(rs)
        return new_rs, scaled_old

    def _write_status(self, d: Obj, new_rs: Obj, old_rs: list[Obj]) -> None:
        all_rs = [new_rs, *old_rs]
        desired = int(d["spec"].get("replicas", 1))

        def total(field: str, sets: list[Obj]) -> int:
            return sum(int(rs["status"].get(field, 0)) for rs in sets)

        spec_total = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rs)
        available = total("availableReplicas", all_rs)
        counts = {
            "replicas": total("replicas", all_rs),
            "updatedReplicas": total("replicas", [new_rs]),
            "readyReplicas": total("readyReplicas", all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(spec_total - available, 0),
        }
        status: Obj = {"observedGeneration": d["metadata"]["generation"]}
        status.update({k: v for k, v in counts.items() if v})  # the API omits zeros
        rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        name = new_rs["metadata"]["name"]
        complete = (
            counts["updatedReplicas"] == desired
            and counts["replicas"] == desired
            and available == desired
        )
        timed_out = self._timed_out(d, new_rs, counts, complete)
        conditions = [
            (
                "Available",
                available >= desired - max_unavailable,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                not timed_out,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{name}" is progressing.',
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
            ),
        ]
        previous = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}
        now = now_rfc3339()
        status["conditions"] = []
        for kind, ok, reason, message, bad_reason, bad_message in conditions:
            value = "True" if ok else "False"
            reason, message = (reason, message) if ok else (bad_reason, bad_message)
            old = previous.get(kind, {})
            same = old.get("reason") == reason and old.get("message") == message
            status["conditions"].append(
                {
                    "type": kind,
                    "status": value,
                    "lastUpdateTime": old["lastUpdateTime"] if same else now,
                    "lastTransitionTime": old.get("lastTransitionTime", now)
                    if old.get("status") == value
                    else now,
                    "reason": reason,
                    "message": message,
                }
            )
        meta = d["metadata"]
        self._store.update_status("deployments", meta["namespace"], meta["name"], status)

    def _clean_history(self, d: Obj, old_rs: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old_rs
            if not rs["spec"].get("replicas") and not rs["status"].get("replicas")
        ]
        for rs in sorted(idle, key=revision)[: max(len(idle) - limit, 0)]:
            self._store.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _sync_replicaset(self, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        pods = self._store.list("pods", ns, lambda p: owned_by(p, rs))
        desired = int(rs["spec"].get("replicas", 0))
        for _ in range(desired - len(pods)):
            pod = self._store.create("pods", ns, _pod_for(rs))
            message = f"Created pod: {pod['metadata']['name']}"
            self._events.record(rs, "SuccessfulCreate", message, "replicaset-controller")
            pods.append(pod)
        if len(pods) > desired:
            # Like the real controller: delete not-ready pods first, then the youngest.
            pods.sort(key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in pods[: len(pods) - desired]:
                self._store.delete("pods", ns, pod["metadata"]["name"])
                message = f"Deleted pod: {pod['metadata']['name']}"
                self._events.record(rs, "SuccessfulDelete", message, "replicaset-controller")
            pods = pods[len(pods) - desired :]
        ready = sum(1 for p in pods if is_ready(p))
        status: Obj = {"replicas": len(pods), "observedGeneration": rs["metadata"]["generation"]}
        counts = {
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        status.update({k: v for k, v in counts.items() if v})
        self._store.update_status("replicasets", ns, rs["metadata"]["name"], status)


def _pod_for(rs: Obj) -> Obj:
    template = copy.deepcopy(rs["spec"]["template"])
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    spec = template.get("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    for container in spec.get("containers", []):
        container.setdefault("imagePullPolicy", "IfNotPresent")
    meta = template.get("metadata", {})
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{suffix}",
            "generateName": f"{rs['metadata']['name']}-",
            "labels": meta.get("labels", {}),
            "annotations": meta.get("annotations", {}),
            "ownerReferences": [owner_reference(rs)],
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
