"""Verification: the alert's condition must stay clear for several checks in a row."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.alertmanager import AlertmanagerClient, AlertmanagerSettings
from oncall.clients.kube import KubeClient
from oncall.clients.probes import probe_http
from oncall.clients.promql_metrics import Readings
from oncall.errors import TransientError
from oncall.models import utcnow
from oncall.observations import (
    AlertClearance,
    Measurement,
    PodSummary,
    Verification,
    VerifyAnalysis,
)


def _consecutive(
    measure: Callable[[], float | None],
    healthy: Callable[[float], bool],
    unit: str,
    threshold: float,
    checks: int,
    timeout_s: float,
    pause_s: float = 0.0,
    analysis: VerifyAnalysis | None = None,
) -> Verification:
    """Measure until ``checks`` healthy results in a row, or give up (see VerifyAnalysis).

    ``measure`` answers None for no data: inconclusive, counted neither way.
    """
    policy = analysis or VerifyAnalysis()
    log = get_run_logger()
    if policy.initial_delay_s:
        log.info("Waiting %.4gs before the first measurement", policy.initial_delay_s)
        time.sleep(policy.initial_delay_s)
    deadline = time.monotonic() + timeout_s
    result = Verification(passed=False, samples=[], threshold=threshold, unit=unit)
    streak = failures = inconclusive = errors_in_row = 0

    def give_up(detail: str, *, no_data: bool = False) -> Verification:
        result.detail, result.inconclusive = detail, no_data
        log.warning("Not verified: %s", detail)
        return result

    while time.monotonic() < deadline:
        try:
            value = measure()
        except TransientError as exc:
            errors_in_row += 1
            streak = 0
            result.measurements.append(
                Measurement(at=utcnow(), value=None, verdict="error", detail=str(exc)[:300])
            )
            log.warning(
                "Measurement failed (%d in a row, %d allowed): %s",
                errors_in_row,
                policy.consecutive_error_limit,
                exc,
            )
            if errors_in_row > policy.consecutive_error_limit:
                return give_up(f"{unit}: {errors_in_row} measurements in a row failed: {exc}")
            time.sleep(max(pause_s, 0.2))
            continue
        errors_in_row = 0
        if value is None:
            inconclusive += 1
            streak = 0
            result.measurements.append(Measurement(at=utcnow(), value=None, verdict="inconclusive"))
            log.warning(
                "%s: no data (%d inconclusive, %d allowed)",
                unit,
                inconclusive,
                policy.inconclusive_limit,
            )
            if inconclusive > policy.inconclusive_limit:
                return give_up(
                    f"{unit}: no data in {inconclusive} measurements: inconclusive", no_data=True
                )
            time.sleep(max(pause_s, 0.2))
            continue
        ok = healthy(value)
        result.samples.append(round(value, 4))
        result.measurements.append(
            Measurement(at=utcnow(), value=value, verdict="healthy" if ok else "unhealthy")
        )
        streak = streak + 1 if ok else 0
        failures += 0 if ok else 1
        log.info(
            "%s %.4g (threshold %.4g): %d/%d healthy in a row",
            unit,
            value,
            threshold,
            streak,
            checks,
        )
        if streak >= checks:
            result.passed = True
            result.detail = f"{unit} within {threshold:.4g} for {checks} checks in a row"
            return result
        if policy.failure_limit is not None and failures > policy.failure_limit:
            return give_up(
                f"{unit} not within {threshold:.4g} in {failures} measurements "
                f"({policy.failure_limit} allowed)"
            )
        time.sleep(pause_s)
    return give_up(
        f"{unit} not within {threshold:.4g} for {checks} checks within {timeout_s:.0f}s",
        no_data=not result.samples and inconclusive > 0,
    )


def _queries(metrics: Readings, result: Verification) -> Verification:
    result.queries = list(dict.fromkeys(metrics.queries()))
    return result


@task(cache_policy=NO_CACHE)
def verify_error_rate(
    metrics: Readings,
    threshold: float,
    checks: int,
    window_s: float,
    timeout_s: float,
    analysis: VerifyAnalysis | None = None,
) -> Verification:
    """Pass when the 5xx rate stays under ``threshold`` for ``checks`` windows in a row."""

    def rate() -> float | None:
        sample = metrics.error_rate(window_s)
        return sample.rate if sample.requests > 0 else None  # no traffic: no data

    result = _consecutive(
        rate, lambda v: v < threshold, "5xx rate", threshold, checks, timeout_s, 0.0, analysis
    )
    if not result.passed:
        result.detail = f"5xx rate not under {threshold:.0%}: " + result.detail
    return _queries(metrics, result)


@task(cache_policy=NO_CACHE)
def verify_latency(
    metrics: Readings,
    histogram: str,
    quantile: float,
    threshold_s: float,
    checks: int,
    window_s: float,
    timeout_s: float,
    analysis: VerifyAnalysis | None = None,
) -> Verification:
    """Pass when the latency quantile of ``histogram`` stays under ``threshold_s``."""
    result = _consecutive(
        lambda: metrics.latency_quantile(histogram, quantile, window_s),
        lambda v: v < threshold_s,
        f"p{round(quantile * 100)} {histogram} (s)",
        threshold_s,
        checks,
        timeout_s,
        0.0,
        analysis,
    )
    return _queries(metrics, result)


@task(cache_policy=NO_CACHE)
def verify_health_endpoint(
    url: str,
    checks: int,
    interval_s: float,
    timeout_s: float,
    analysis: VerifyAnalysis | None = None,
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
        analysis,
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
    analysis: VerifyAnalysis | None = None,
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
        analysis,
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
    analysis: VerifyAnalysis | None = None,
) -> Verification:
    """Pass when ``numerator / denominator`` stays under ``threshold`` (e.g. pool in use/size)."""

    def ratio() -> float | None:
        top, bottom = metrics.gauge(numerator), metrics.gauge(denominator)
        return None if top is None or not bottom else top / bottom

    result = _consecutive(
        ratio,
        lambda v: v < threshold,
        f"{numerator}/{denominator}",
        threshold,
        checks,
        timeout_s,
        interval_s,
        analysis,
    )
    return _queries(metrics, result)


@task(cache_policy=NO_CACHE)
def wait_for_alert_to_clear(
    alertmanager_url: str | None, labels: dict[str, str], timeout_s: float, interval_s: float
) -> AlertClearance:
    """Seed "verify all alerts have cleared": wait until Alertmanager holds no alert like it."""
    log = get_run_logger()
    settings = AlertmanagerSettings()
    if alertmanager_url:
        settings = settings.model_copy(update={"url": alertmanager_url})
    client = AlertmanagerClient.from_settings(settings)
    if client is None:
        log.info("No Alertmanager configured (ONCALL_ALERTMANAGER_URL): clearance not checked")
        return AlertClearance(checked=False, detail="no Alertmanager configured")
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    deadline = time.monotonic() + timeout_s
    firing: list[dict[str, Any]] = []
    errors = 0
    try:
        while True:
            try:
                firing = client.firing(labels)
                errors = 0
            except TransientError as exc:
                errors += 1
                log.warning("Alertmanager not answering (%d in a row): %s", errors, exc)
                if errors > 4:
                    return AlertClearance(checked=True, detail=f"Alertmanager not answering: {exc}")
            else:
                if not firing:
                    log.info("The alert has cleared in Alertmanager (%s)", wanted)
                    return AlertClearance(checked=True, cleared=True, detail="alert cleared")
                log.info("%d alert(s) still firing (%s)", len(firing), wanted)
            if time.monotonic() >= deadline:
                break
            time.sleep(interval_s)
    finally:
        client.close()
    return AlertClearance(
        checked=True,
        detail=f"still firing in Alertmanager after {timeout_s:.0f}s: {wanted}",
        firing=[dict(a.get("labels") or {}) for a in firing],
    )
