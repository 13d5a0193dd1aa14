"""kube-state-metrics: the cluster's objects as Prometheus series, for crash-loop alerts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from oncall_sandbox.store import Store

_WAITING = ("ContainerCreating", "CrashLoopBackOff", "CreateContainerConfigError", "ErrImagePull")


class _StateCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> list[Metric]:
        c = ["namespace", "pod", "container"]
        restarts = CounterMetricFamily(
            "kube_pod_container_status_restarts", "Container restarts.", labels=c
        )
        waiting = GaugeMetricFamily(
            "kube_pod_container_status_waiting_reason",
            "Why a container waits.",
            labels=[*c, "reason"],
        )
        terminated = GaugeMetricFamily(
            "kube_pod_container_status_last_terminated_reason",
            "Why a container last terminated.",
            labels=[*c, "reason"],
        )
        ready = GaugeMetricFamily("kube_pod_container_status_ready", "Container ready.", labels=c)
        for pod in self._store.list("pods"):
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            for status in pod["status"].get("containerStatuses") or []:
                labels = [ns, name, status["name"]]
                restarts.add_metric(labels, float(status.get("restartCount", 0)))
                ready.add_metric(labels, 1.0 if status.get("ready") else 0.0)
                reason = ((status.get("state") or {}).get("waiting") or {}).get("reason", "")
                for known in _WAITING:
                    waiting.add_metric([*labels, known], 1.0 if reason == known else 0.0)
                last = (status.get("lastState") or {}).get("terminated")
                if last:
                    terminated.add_metric([*labels, last.get("reason", "")], 1.0)
        d = ["namespace", "deployment"]
        spec = GaugeMetricFamily("kube_deployment_spec_replicas", "Desired replicas.", labels=d)
        available = GaugeMetricFamily(
            "kube_deployment_status_replicas_available", "Available replicas.", labels=d
        )
        for deployment in self._store.list("deployments"):
            labels = [deployment["metadata"]["namespace"], deployment["metadata"]["name"]]
            spec.add_metric(labels, float(deployment["spec"].get("replicas", 1)))
            status = deployment.get("status") or {}
            available.add_metric(labels, float(status.get("availableReplicas", 0)))
        endpoints = GaugeMetricFamily(
            "kube_endpoint_address_available",
            "Ready addresses of an Endpoints object.",
            labels=["namespace", "endpoint"],
        )
        for ep in self._store.list("endpoints"):
            count = sum(len(s.get("addresses", [])) for s in ep.get("subsets") or [])
            endpoints.add_metric(
                [ep["metadata"]["namespace"], ep["metadata"]["name"]], float(count)
            )
        phase = GaugeMetricFamily(
            "kube_persistentvolumeclaim_status_phase",
            "PVC phase.",
            labels=["namespace", "persistentvolumeclaim", "phase"],
        )
        for claim in self._store.list("persistentvolumeclaims"):
            meta, current = claim["metadata"], claim.get("status", {}).get("phase", "Pending")
            for known in ("Bound", "Pending", "Lost"):
                phase.add_metric([meta["namespace"], meta["name"], known], float(current == known))
        return [restarts, waiting, terminated, ready, spec, available, endpoints, phase]


def exporter(store: Store) -> bytes:
    """One scrape of the cluster's state."""
    registry = CollectorRegistry()
    registry.register(_StateCollector(store))
    data: bytes = generate_latest(registry)
    return data
