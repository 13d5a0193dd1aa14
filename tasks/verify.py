"""Verification: the alert's condition must stay clear for several checks in a row."""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.clients.probes import probe_http
from oncall.clients.promql_metrics import Readings
from oncall.errors import TransientError
from oncall.observations import PodSummary, Verification


def _consecutive(
    measure: Callable[[], float | None],
    healthy: Callable[[float], bool],
    unit: str,
    threshold: float,
    checks: int,
    timeout_s: float,
    pause_s: float = 0.0,
) -> Verification:
    """Measure until ``checks`` healthy results in a row, or give up after ``timeout_s``."""
    log = get_run_logger()
    deadline = time.monotonic() + timeout_s
    samples: list[float] = []
    streak = 0
    while time.monotonic() < deadline:
        try:
            value = measure()
        except TransientError as exc:
            log.warning("Measurement failed, counts as unhealthy: %s", exc)
            value = None
        if value is None:
            streak = 0
            time.sleep(max(pause_s, 0.2))
            continue
        samples.append(round(value, 4))
        streak = streak + 1 if healthy(value) else 0
        log.info(
            "%s %.4g (threshold %.4g): %d/%d healthy in a row",
            unit,
            value,
            threshold,
            streak,
            checks,
        )
        if streak >= checks:
            return Verification(
                passed=True,
                samples=samples,
                threshold=threshold,
                detail=f"{unit} within {threshold:.4g} for {checks} checks in a row",
            )
        time.sleep(pause_s)
    return Verification(
        passed=False,
        samples=samples,
        threshold=threshold,
        detail=f"{unit} not within {threshold:.4g} for {checks} checks within {timeout_s:.0f}s",
    )


@task(cache_policy=NO_CACHE)
def verify_error_rate(
    metrics: Readings, threshold: float, checks: int, window_s: float, timeout_s: float
) -> Verification:
    """Pass when the 5xx rate stays under ``threshold`` for ``checks`` windows in a row."""
    result = _consecutive(
        lambda: metrics.error_rate(window_s).rate,
        lambda v: v < threshold,
        "5xx rate",
        threshold,
        checks,
        timeout_s,
    )
    if not result.passed:
        result.detail = f"5xx rate not under {threshold:.0%}: " + result.detail
    return result


@task(cache_policy=NO_CACHE)
def verify_latency(
    metrics: Readings,
    histogram: str,
    quantile: float,
    threshold_s: float,
    checks: int,
    window_s: float,
    timeout_s: float,
) -> Verification:
    """Pass when the latency quantile of ``histogram`` stays under ``threshold_s``."""
    return _consecutive(
        lambda: metrics.latency_quantile(histogram, quantile, window_s),
        lambda v: v < threshold_s,
        f"p{round(quantile * 100)} {histogram} (s)",
        threshold_s,
        checks,
        timeout_s,
    )


@task(cache_policy=NO_CACHE)
def verify_health_endpoint(
    url: str, checks: int, interval_s: float, timeout_s: float
) -> Verification:
    """Pass when the health URL answers 2xx ``checks`` times in a row."""
    return _consecutive(
        lambda: 1.0 if probe_http("health", url, 3.0).ok else 0.0,
        lambda v: v == 1.0,
        f"health of {url} (1=up)",
        1.0,
        checks,
        timeout_s,
        interval_s,
    )


@task(cache_policy=NO_CACHE)
def verify_pods_ready(
    kube: KubeClient,
    namespace: str,
    deployment: str,
    checks: int,
    interval_s: float,
    timeout_s: float,
    kind: str = "deployment",
) -> Verification:
    """Pass when every pod is ready, none waits in a back-off, and restarts stop rising."""
    last: dict[str, int] = {}

    def pods_and_missing() -> tuple[list[PodSummary], int]:
        if kind == "deployment":
            health = kube.health(namespace, deployment)
            return health.pods, max(0, health.replicas - health.ready_replicas)
        workload = kube._workload(namespace, kind, deployment)
        selector = (workload["spec"].get("selector") or {}).get("matchLabels") or {}
        pods = kube.pods(namespace, selector)
        status = workload.get("status") or {}
        want = int(
            workload["spec"].get("replicas", 1)
            if kind == "statefulset"
            else status.get("desiredNumberScheduled", len(pods))
        )
        return pods, max(0, want - sum(1 for p in pods if p.ready))

    def not_ready() -> float:
        pods, missing = pods_and_missing()
        bad = sum(
            1
            for p in pods
            if not p.ready or p.waiting_reason or p.restarts > last.get(p.name, p.restarts)
        )
        last.update({p.name: p.restarts for p in pods})
        return float(bad + missing)

    return _consecutive(
        not_ready,
        lambda v: v == 0,
        f"pods of {deployment} not ready",
        0,
        checks,
        timeout_s,
        interval_s,
    )


@task(cache_policy=NO_CACHE)
def verify_gauge_ratio(
    metrics: Readings,
    numerator: str,
    denominator: str,
    threshold: float,
    checks: int,
    interval_s: float,
    timeout_s: float,
) -> Verification:
    """Pass when ``numerator / denominator`` stays under ``threshold`` (e.g. pool in use/size)."""

    def ratio() -> float | None:
        top, bottom = metrics.gauge(numerator), metrics.gauge(denominator)
        return None if top is None or not bottom else top / bottom

    return _consecutive(
        ratio,
        lambda v: v < threshold,
        f"{numerator}/{denominator}",
        threshold,
        checks,
        timeout_s,
        interval_s,
    )
