"""Pod lifecycle on the simulated nodes: binding, start, readiness, crashes, CrashLoopBackOff."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field

from oncall_sandbox.events import EventRecorder
from oncall_sandbox.nodes import host_ip, place
from oncall_sandbox.podlogs import PodLogs, stamp
from oncall_sandbox.store import Obj, Store, now_rfc3339
from oncall_sandbox.workloads import Crash, SimClock
from oncall_sandbox.world import StartPlan, World

_PULL_SECONDS = 1.0  # simulated seconds from scheduling to a running container
_BACKOFF_START, _BACKOFF_MAX = 10.0, 300.0  # the kubelet's crash back-off, doubling
_ids = itertools.count(1)


def _pod_ip(uid: str) -> str:
    digest = hashlib.sha256(uid.encode()).digest()
    return f"10.244.{digest[0]}.{max(digest[1], 2)}"


class EnvError(Exception):
    """A container's environment cannot be built (CreateContainerConfigError)."""


def resolve_env(store: Store, namespace: str, container: Obj) -> dict[str, str]:
    """The environment a container starts with: envFrom ConfigMaps, then env entries."""
    env: dict[str, str] = {}

    def config_map(name: str, optional: bool) -> dict[str, str]:
        found = store.find("configmaps", namespace, name)
        if found is None and not optional:
            raise EnvError(f'configmap "{name}" not found')
        return dict((found or {}).get("data") or {})

    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref:
            data = config_map(ref["name"], bool(ref.get("optional")))
            env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            data = config_map(ref["name"], bool(ref.get("optional")))
            if ref["key"] not in data and not ref.get("optional"):
                raise EnvError(
                    f"couldn't find key {ref['key']} in ConfigMap {namespace}/{ref['name']}"
                )
            if ref["key"] in data:
                env[item["name"]] = data[ref["key"]]
        else:
            env[item["name"]] = str(item.get("value", ""))
    return env


def qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    resources = [c.get("resources") or {} for c in pod["spec"]["containers"]]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        set(r.get("limits") or {}) >= {"cpu", "memory"}
        and all(
            (r.get("requests") or r["limits"]).get(k) == r["limits"][k] for k in ("cpu", "memory")
        )
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass
class ContainerRun:
    """The kubelet's view of a pod's (first) container across restarts."""

    name: str
    image: str
    scheduled: float
    node: str
    plan: StartPlan | None = None
    env: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    started_at: str = ""
    container_id: str = ""
    restarts: int = 0
    running: bool = False
    backoff_until: float | None = None
    backoff_seconds: float = 0.0
    last_terminated: Obj | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    seeded: bool = False  # started while the cluster was seeded: ready from the first tick


class Kubelet:
    """Schedules pods, starts their containers, restarts crashed ones with back-off."""

    def __init__(
        self, store: Store, recorder: EventRecorder, logs: PodLogs, clock: SimClock, world: World
    ) -> None:
        self._store, self._events, self._logs = store, recorder, logs
        self._clock, self._world = clock, world
        self._runs: dict[str, ContainerRun] = {}
        self._names: dict[str, tuple[str, str]] = {}
        self._unschedulable: set[str] = set()  # pods told once that no node fits them
        self.instant = False  # while seeding, pods come up at once

    def run_of(self, uid: str) -> ContainerRun | None:
        """The container run of a pod (its env and start time), if it has one."""
        return self._runs.get(uid)

    def reconcile(self) -> None:
        """Advance every pod's lifecycle by what the elapsed time allows."""
        pods = self._store.list("pods")
        live = {pod["metadata"]["uid"] for pod in pods}
        # Forget the gone pods first: a StatefulSet's replacement pod reuses the name (and the
        # log key) of the pod it replaces.
        for uid in set(self._runs) - live:
            del self._runs[uid]
            self._logs.forget(*self._names.pop(uid))
        self._unschedulable &= live
        for pod in pods:
            self._step(pod)

    def _elapsed(self, since: float) -> float:
        return float("inf") if self.instant else self._clock.sim(time.monotonic() - since)

    def _step(self, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        run = self._runs.get(uid)
        if run is None:
            found = self._schedule(pod)
            if found is None:
                return
            run = found
        now = time.monotonic()
        if run.plan is None or (run.backoff_until is not None and now >= run.backoff_until):
            if run.plan is not None or self._elapsed(run.scheduled) >= _PULL_SECONDS:
                self._start(pod, run)
        elif run.running:
            planned = run.plan.crash
            # A fault hits a container that started healthy; later runs follow their plan.
            crash = self._world.crash_now(meta["name"], uid) if planned is None else None
            if crash is None and planned and self._elapsed(run.started) >= planned.after_seconds:
                crash = planned
            if crash is not None:
                self._crash(pod, run, crash)
        self._write_status(pod, run)

    def _schedule(self, pod: Obj) -> ContainerRun | None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        node = place(self._store, pod)
        if node is None:
            self._pending(pod)
            return None
        container = pod["spec"]["containers"][0]
        run = ContainerRun(container["name"], container["image"], time.monotonic(), node)
        self._runs[meta["uid"]] = run
        self._names[meta["uid"]] = (ns, name)
        if pod["spec"].get("nodeName") != node:
            pod["spec"]["nodeName"] = node
            self._store.update("pods", ns, pod, check_rv=False)
        message = f"Successfully assigned {ns}/{name} to {node}"
        self._events.record(pod, "Scheduled", message, "default-scheduler")
        return run

    def _pending(self, pod: Obj) -> None:
        """No node fits the pod: it stays Pending with PodScheduled False, as the scheduler says."""
        meta = pod["metadata"]
        if meta["uid"] in self._unschedulable:
            return
        self._unschedulable.add(meta["uid"])
        n = len(self._store.list("nodes"))
        message = (
            f"0/{n} nodes are available: {n} node(s) didn't match Pod's node affinity/selector."
        )
        status: Obj = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
            "qosClass": qos_class(pod),
        }
        self._store.update_status("pods", meta["namespace"], meta["name"], status)
        self._events.record(
            pod, "FailedScheduling", message, "default-scheduler", event_type="Warning"
        )

    def _field(self, run: ContainerRun) -> str:
        return f"spec.containers{{{run.name}}}"

    def _start(self, pod: Obj, run: ContainerRun) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            env = resolve_env(self._store, ns, pod["spec"]["containers"][0])
        except EnvError as exc:
            run.waiting_reason, run.waiting_message = "CreateContainerConfigError", str(exc)
            self._events.record(
                pod,
                "Failed",
                f"Error: {exc}",
                "kubelet",
                event_type="Warning",
                field_path=self._field(run),
                host=run.node,
            )
            return
        if run.plan is not None:
            run.restarts += 1
        run.plan = self._world.start_plan(name, meta["uid"], run.image, env)
        run.env, run.running, run.backoff_until = env, True, None
        run.seeded = self.instant
        run.started, run.started_at = time.monotonic(), now_rfc3339()
        run.container_id = (
            "containerd://"
            + hashlib.sha256(f"{meta['uid']}{run.name}{next(_ids)}".encode()).hexdigest()
        )
        for reason, message in (
            ("Pulled", f'Container image "{run.image}" already present on machine'),
            ("Created", f"Created container: {run.name}"),
            ("Started", f"Started container {run.name}"),
        ):
            self._events.record(
                pod, reason, message, "kubelet", field_path=self._field(run), host=run.node
            )
        self._logs.start(ns, name, run.name, run.plan.lines)

    def _crash(self, pod: Obj, run: ContainerRun, crash: Crash) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        at = time.time()
        for line in crash.lines:
            self._logs.write(ns, name, run.name, f"{stamp(at)} {line}")
        run.running = False
        run.last_terminated = {
            "terminated": {
                "exitCode": crash.exit_code,
                "reason": crash.reason,
                "startedAt": run.started_at,
                "finishedAt": now_rfc3339(),
                "containerID": run.container_id,
            }
        }
        # The first restart is immediate; then 10 s, 20 s, 40 s ... up to five minutes.
        delay = (
            0.0
            if run.restarts == 0
            else min(_BACKOFF_START * 2 ** (run.restarts - 1), _BACKOFF_MAX)
        )
        run.backoff_seconds = delay
        run.backoff_until = time.monotonic() + self._clock.real(delay)
        run.waiting_reason = "CrashLoopBackOff"
        run.waiting_message = (
            f"back-off {delay:.0f}s restarting failed container={run.name} "
            f"pod={name}_{ns}({meta['uid']})"
        )
        if delay:
            self._events.record(
                pod,
                "BackOff",
                f"Back-off restarting failed container {run.name} in pod "
                f"{name}_{ns}({meta['uid']})",
                "kubelet",
                event_type="Warning",
                field_path=self._field(run),
                host=run.node,
            )

    def _ready(self, run: ContainerRun) -> bool:
        # A seeded pod was already serving when the sandbox started; its readiness is not
        # measured again from the first real tick (a ready Service would flap to no endpoints).
        return bool(
            run.running
            and run.plan
            and (run.seeded or self._elapsed(run.started) >= run.plan.ready_after)
        )

    def _write_status(self, pod: Obj, run: ContainerRun) -> None:
        meta, old = pod["metadata"], pod.get("status") or {}
        previous = {c["type"]: c for c in old.get("conditions") or []}
        now = now_rfc3339()
        started = old.get("startTime") or (run.started_at if run.plan else "")
        ready = self._ready(run)

        def condition(kind: str, ok: bool) -> Obj:
            value = "True" if ok else "False"
            prior = previous.get(kind, {})
            cond: Obj = {
                "type": kind,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": prior.get("lastTransitionTime", now)
                if prior.get("status") == value
                else now,
            }
            if not ok:
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{run.name}]"
            return cond

        state: Obj
        if run.running:
            state = {"running": {"startedAt": run.started_at}}
        else:
            state = {"waiting": {"reason": run.waiting_reason}}
            if run.waiting_message:
                state["waiting"]["message"] = run.waiting_message
        container: Obj = {
            "name": run.name,
            "image": run.image,
            "imageID": "",
            "ready": ready,
            "restartCount": run.restarts,
            "started": run.running,
            "state": state,
            "lastState": run.last_terminated or {},
        }
        if run.plan is not None:
            container["imageID"] = (
                f"{run.image.rsplit(':', 1)[0]}@sha256:"
                + hashlib.sha256(run.image.encode()).hexdigest()
            )
            container["containerID"] = run.container_id
        status: Obj = {
            "phase": "Running" if run.plan is not None else "Pending",
            "conditions": [condition("PodScheduled", True)],
            "hostIP": host_ip(run.node),
            "hostIPs": [{"ip": host_ip(run.node)}],
            "qosClass": qos_class(pod),
            "containerStatuses": [container],
        }
        if run.plan is not None:
            ip = _pod_ip(meta["uid"])
            status["conditions"] = [
                condition("PodReadyToStartContainers", True),
                condition("Initialized", True),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", True),
            ]
            status.update({"podIP": ip, "podIPs": [{"ip": ip}], "startTime": started})
        self._store.update_status("pods", meta["namespace"], meta["name"], status)
