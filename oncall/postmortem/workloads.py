"""Workload evidence from the cluster: logs (current and previous), events, rollout history.

Pods replaced by a mitigation take their logs with them, so the playbook should call
`snapshot` before it applies one (the seed's "Preserve Evidence"); the post-incident
flow adds those snapshots to what it gathers afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from oncall.clients.kube import KubeClient
from oncall.models import Incident, utcnow
from oncall.postmortem.evidence import ContainerLog, EventRecord, WorkloadEvidence

Stage = Literal["before mitigation", "after resolution"]
# Events and logs this long before the alert's start belong to the incident (the change).
LEAD_TIME = timedelta(minutes=30)


def affected_deployments(incident: Incident) -> list[tuple[str, str]]:
    """(namespace, deployment) the incident touched: actions, diagnosis, alert labels."""
    found: list[tuple[str, str]] = []

    def add(namespace: str | None, name: str | None) -> None:
        if namespace and name and (namespace, name) not in found:
            found.append((namespace, name))

    labels = incident.alert.labels
    for action in incident.actions:
        d = action.detail
        if action.kind == "diagnosis":
            if d.get("change"):
                add(action.target, d["change"]["deployment"])
            for health in d.get("health", []):
                add(health["namespace"], health["name"])
        elif str(d.get("target", "")).startswith("deployment/"):
            add(d.get("namespace"), d["target"].removeprefix("deployment/"))
        elif "/deployment/" in action.target:
            namespace, _, name = action.target.partition("/deployment/")
            add(namespace, name)
    add(labels.get("namespace"), labels.get("deployment"))
    return found


def collect(
    kube: KubeClient, namespace: str, name: str, since: datetime, stage: Stage
) -> WorkloadEvidence:
    """Rollout history, pod logs since ``since`` and events of one deployment, now."""
    dep = kube.deployment(namespace, name)
    selector: dict[str, str] = dep["spec"]["selector"].get("matchLabels", {})
    now = utcnow()
    since_s = max(1, int((now - since).total_seconds()) + 1)
    logs: list[ContainerLog] = []
    for pod in kube.pod_objects(namespace, selector):
        pod_name = pod["metadata"]["name"]
        images = [c["image"] for c in pod["spec"]["containers"]]
        for status in pod.get("status", {}).get("containerStatuses") or []:
            restarts = int(status.get("restartCount", 0))
            for previous in (False, True) if restarts else (False,):
                text = kube.pod_logs(namespace, pod_name, since_seconds=since_s, previous=previous)
                logs.append(
                    ContainerLog(
                        pod=pod_name,
                        container=status["name"],
                        images=images,
                        restarts=restarts,
                        previous=previous,
                        captured_at=now,
                        captured=stage,
                        text=text,
                    )
                )
    return WorkloadEvidence(
        namespace=namespace,
        deployment=name,
        revisions=kube.rollout_history(namespace, name),
        logs=logs,
        events=events_of(kube.events(namespace), name, since),
    )


def window_start(incident: Incident) -> datetime:
    """Where the incident's window of logs, events and metrics begins."""
    return incident.alert.starts_at - LEAD_TIME


def snapshot(kube: KubeClient, incident: Incident) -> list[WorkloadEvidence]:
    """Evidence of every affected deployment, taken now, before a mitigation replaces pods."""
    return [
        collect(kube, namespace, name, window_start(incident), "before mitigation")
        for namespace, name in affected_deployments(incident)
    ]


def events_of(items: list[dict[str, Any]], deployment: str, since: datetime) -> list[EventRecord]:
    """Events about the deployment, its ReplicaSets and pods, from ``since`` on."""
    out = []
    cutoff = since.replace(microsecond=0)  # event times have whole seconds
    for item in items:
        obj = item.get("involvedObject", {})
        if not str(obj.get("name", "")).startswith(deployment):
            continue
        raw = item.get("lastTimestamp") or item.get("eventTime") or item.get("firstTimestamp")
        at = datetime.fromisoformat(raw) if raw else None
        if at is not None and at < cutoff:
            continue
        out.append(
            EventRecord(
                at=at,
                type=item.get("type", ""),
                reason=item.get("reason", ""),
                object=f"{obj.get('kind', '')}/{obj.get('name', '')}",
                message=item.get("message", ""),
                count=int(item.get("count") or 1),
            )
        )
    return out


def merge(snapshots: list[WorkloadEvidence], now: list[WorkloadEvidence]) -> list[WorkloadEvidence]:
    """Current evidence plus the logs and events of earlier snapshots of the same deployments."""
    merged = {(w.namespace, w.deployment): w.model_copy(deep=True) for w in now}
    for snap in snapshots:
        key = (snap.namespace, snap.deployment)
        if key not in merged:
            merged[key] = snap.model_copy(deep=True)
            continue
        target = merged[key]
        target.logs = [*snap.logs, *target.logs]
        seen = {(e.at, e.reason, e.object, e.message) for e in target.events}
        extra = [e for e in snap.events if (e.at, e.reason, e.object, e.message) not in seen]
        target.events = sorted(
            [*extra, *target.events], key=lambda e: (e.at is None, e.at or utcnow())
        )
    return list(merged.values())
