"""Diagnosis: what the seeds read by hand (describe, logs, events, metrics), as evidence."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.clients.promql_metrics import Readings
from oncall.clients.service_admin import ServiceAdmin
from oncall.retrying import retry_if_transient

read_task = task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)

# The seeds grep for these: `grep ERROR`, `grep -E "(500|502|503|504)"`.
_STATUS = re.compile(r"\b(50[0-4])\b")
# An error line: plain-text ERROR/FATAL/Traceback/panic, or a structured log (JSON,
# logfmt) whose level is error, fatal, panic or critical.
ERROR_LINE = re.compile(
    r"ERROR|Error|FATAL|Fatal|CRITICAL|Traceback|panic:"
    r'|(?i:\blevel"?\s*[:=]\s*"?(?:error|err|fatal|panic|critical|crit)\b)'
)


@read_task
def describe_pods(
    kube: KubeClient, namespace: str, selector: dict[str, str]
) -> list[dict[str, Any]]:
    """`kubectl describe pods`: state, waiting reason, last termination, restarts per pod."""
    described = []
    for pod in kube.pod_objects(namespace, selector):
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("lastState") or {}).get("terminated") or {}
            described.append(
                {
                    "pod": pod["metadata"]["name"],
                    "container": status.get("name"),
                    "image": status.get("image"),
                    "ready": bool(status.get("ready")),
                    "restarts": int(status.get("restartCount", 0)),
                    "waiting": ((status.get("state") or {}).get("waiting") or {}).get("reason"),
                    "last_exit_code": terminated.get("exitCode"),
                    "last_reason": terminated.get("reason"),
                }
            )
    log = get_run_logger()
    for d in described:
        log.info(
            "%s: ready=%s restarts=%d waiting=%s last=%s/%s",
            d["pod"],
            d["ready"],
            d["restarts"],
            d["waiting"],
            d["last_reason"],
            d["last_exit_code"],
        )
    return described


@read_task
def scan_logs(
    kube: KubeClient,
    namespace: str,
    selector: dict[str, str],
    tail_lines: int = 200,
    previous: bool = False,
) -> dict[str, Any]:
    """`kubectl logs | grep ERROR`: error lines, 5xx counts and samples across the pods."""
    errors: list[str] = []
    codes: Counter[str] = Counter()
    for pod in kube.pods(namespace, selector):
        if previous and pod.restarts == 0:
            continue
        try:
            text = kube.pod_logs(namespace, pod.name, tail_lines=tail_lines, previous=previous)
        except Exception as exc:  # a pod without a previous container answers 400
            get_run_logger().info(
                "no %slogs for %s: %s", "previous " if previous else "", pod.name, exc
            )
            continue
        for line in text.splitlines():
            if ERROR_LINE.search(line):
                errors.append(f"{pod.name}: {line}")
                codes.update(_STATUS.findall(line))
    summary = {"error_lines": len(errors), "status_codes": dict(codes), "samples": errors[-10:]}
    get_run_logger().info(
        "Logs%s: %d error lines, 5xx %s",
        " (previous)" if previous else "",
        len(errors),
        dict(codes) or "none",
    )
    return summary


@read_task
def warning_events(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """`kubectl get events --sort-by=.lastTimestamp`, the Warning ones."""
    events = [
        {
            "object": f"{e.get('involvedObject', {}).get('kind')}/"
            f"{e.get('involvedObject', {}).get('name')}",
            "reason": e.get("reason"),
            "message": e.get("message"),
            "count": e.get("count", 1),
            "last": e.get("lastTimestamp"),
        }
        for e in kube.events(namespace)
        if e.get("type") == "Warning"
    ]
    get_run_logger().info("%d warning events in %s", len(events), namespace)
    return events[-20:]


@read_task
def read_gauges(metrics: Readings, names: list[str]) -> dict[str, float | None]:
    """Current values of a service's gauges (summed over pods)."""
    values = {name: metrics.gauge(name) for name in names}
    get_run_logger().info("Gauges: %s", values)
    return values


@read_task
def read_slow_queries(admin: ServiceAdmin) -> list[dict[str, Any]]:
    """The service's slowest recent queries (CRONOS "Check slow queries")."""
    queries = admin.slow_queries()
    for q in queries[:3]:
        get_run_logger().info("slow query %.0f ms: %s", q.get("mean_ms", 0), q.get("query"))
    return queries


@read_task
def measure_latency(
    metrics: Readings, histogram: str, quantile: float, window_s: float
) -> float | None:
    """One latency quantile over a window, as Prometheus' histogram_quantile computes it."""
    value = metrics.latency_quantile(histogram, quantile, window_s)
    get_run_logger().info(
        "p%d %s = %s s",
        round(quantile * 100),
        histogram,
        f"{value:.3f}" if value is not None else "no traffic",
    )
    return value


@read_task
def measure_error_rate(metrics: Readings, window_s: float) -> float:
    """The 5xx share of requests over a window."""
    rate = metrics.error_rate(window_s).rate
    get_run_logger().info("5xx rate %.2f%%", rate * 100)
    return rate


@read_task
def read_config(kube: KubeClient, namespace: str, config_map: str) -> dict[str, str]:
    """`kubectl get configmap -o yaml`: the app's configuration as it is now."""
    data = kube.config_map(namespace, config_map)
    get_run_logger().info("ConfigMap %s/%s: %s", namespace, config_map, data)
    return data
