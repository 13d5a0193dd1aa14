"""Pod lifecycle on the one simulated node, and the Endpoints controller."""

from __future__ import annotations

import hashlib
import time

from oncall.sandbox.events import NODE_NAME, EventRecorder
from oncall.sandbox.selectors import matches_labels
from oncall.sandbox.services import is_ready
from oncall.sandbox.store import Obj, Store, now_rfc3339
from oncall.sandbox.workloads import PodLogs, SimClock, profile_for

_PULL_SECONDS = 1.0  # simulated seconds from scheduling to a running container
_HOST_IP = "10.0.0.10"


def _pod_ip(uid: str) -> str:
    digest = hashlib.sha256(uid.encode()).digest()
    return f"10.244.{digest[0]}.{max(digest[1], 2)}"


def _condition(kind: str, ok: bool, now: str, reason: str = "") -> Obj:
    condition: Obj = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if not ok and reason:
        condition["reason"] = reason
    return condition


class Kubelet:
    """Schedules pods, starts their containers and marks them ready after a while."""

    def __init__(
        self, store: Store, recorder: EventRecorder, logs: PodLogs, clock: SimClock
    ) -> None:
        self._store, self._events, self._logs, self._clock = store, recorder, logs, clock
        self._scheduled_at: dict[str, float] = {}
        self._names: dict[str, tuple[str, str]] = {}
        self.instant = False  # while seeding, pods come up at once

    def reconcile(self) -> None:
        """Advance every pod's lifecycle by what the elapsed time allows."""
        live = set()
        for pod in self._store.list("pods"):
            uid = pod["metadata"]["uid"]
            live.add(uid)
            self._step(pod)
        for uid in set(self._scheduled_at) - live:
            del self._scheduled_at[uid]
            self._logs.forget(*self._names.pop(uid))

    def _step(self, pod: Obj) -> None:
        meta, status = pod["metadata"], pod["status"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        now = now_rfc3339()
        if uid not in self._scheduled_at:
            self._scheduled_at[uid] = time.monotonic()
            self._names[uid] = (ns, name)
            pod["spec"]["nodeName"] = NODE_NAME
            pod = self._store.update("pods", ns, pod, check_rv=False)
            status = {
                **status,
                "conditions": [_condition("PodScheduled", True, now)],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "lastState": {},
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                    for c in pod["spec"]["containers"]
                ],
            }
            self._store.update_status("pods", ns, name, status)
            self._events.record(
                pod,
                "Scheduled",
                f"Successfully assigned {ns}/{name} to {NODE_NAME}",
                "default-scheduler",
            )
        elapsed = self._clock.sim(time.monotonic() - self._scheduled_at[uid])
        container = pod["spec"]["containers"][0]
        profile = profile_for(container["image"])
        running = self.instant or elapsed >= _PULL_SECONDS
        ready = self.instant or elapsed >= profile.ready_after_seconds
        if status.get("phase") == "Running" and (not ready or is_ready(pod)):
            return
        if not running:
            return
        field = f"spec.containers{{{container['name']}}}"
        if status.get("phase") != "Running":
            image = container["image"]
            for reason, message in (
                ("Pulled", f'Container image "{image}" already present on machine'),
                ("Created", f"Created container: {container['name']}"),
                ("Started", f"Started container {container['name']}"),
            ):
                self._events.record(pod, reason, message, "kubelet", field_path=field)
            self._logs.start(ns, name, container["name"], image)
        started = status.get("startTime", now)
        conditions = [
            _condition("PodReadyToStartContainers", True, started),
            _condition("Initialized", True, started),
            _condition("Ready", ready, now, "ContainersNotReady"),
            _condition("ContainersReady", ready, now, "ContainersNotReady"),
            _condition("PodScheduled", True, started),
        ]
        ip = _pod_ip(uid)
        self._store.update_status(
            "pods",
            ns,
            name,
            {
                "phase": "Running",
                "conditions": conditions,
                "hostIP": _HOST_IP,
                "hostIPs": [{"ip": _HOST_IP}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": started,
                "qosClass": "BestEffort",
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": f"{c['image'].rsplit(':', 1)[0]}@sha256:"
                        + hashlib.sha256(c["image"].encode()).hexdigest(),
                        "containerID": "containerd://"
                        + hashlib.sha256((uid + c["name"]).encode()).hexdigest(),
                        "ready": ready,
                        "restartCount": 0,
                        "started": True,
                        "state": {"running": {"startedAt": started}},
                        "lastState": {},
                    }
                    for c in pod["spec"]["containers"]
                ],
            },
        )


class EndpointsController:
    """Keeps one Endpoints object per Service, listing the pods its selector picks."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def reconcile(self) -> None:
        """Rewrite every Service's Endpoints from the pods as they are now."""
        for service in self._store.list("services"):
            self._sync(service)
        for endpoints in self._store.list("endpoints"):
            meta = endpoints["metadata"]
            if self._store.find("services", meta["namespace"], meta["name"]) is None:
                self._store.delete("endpoints", meta["namespace"], meta["name"])

    def _sync(self, service: Obj) -> None:
        meta = service["metadata"]
        ns, name = meta["namespace"], meta["name"]
        selector = service["spec"].get("selector") or {}
        pods = self._store.list(
            "pods", ns, lambda p: matches_labels(selector, p["metadata"].get("labels"))
        )
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in pods:
            if not pod["status"].get("podIP"):
                continue
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": NODE_NAME,
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            (ready if is_ready(pod) else not_ready).append(address)
        ports = [
            {"name": p["name"], "port": p.get("targetPort", p["port"]), "protocol": "TCP"}
            if p.get("name")
            else {"port": p.get("targetPort", p["port"]), "protocol": "TCP"}
            for p in service["spec"].get("ports", [])
        ]
        subset: Obj = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        endpoints: Obj = {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": meta.get("labels", {})},
        }
        if ready or not_ready:
            endpoints["subsets"] = [subset]
        current = self._store.find("endpoints", ns, name)
        if current is None:
            self._store.create("endpoints", ns, endpoints)
            return
        if current.get("subsets") != endpoints.get("subsets"):
            current["subsets"] = endpoints.get("subsets")
            if current["subsets"] is None:
                del current["subsets"]
            self._store.update("endpoints", ns, current, check_rv=False)
