"""Which playbook, configuration and alert rule each sandbox scenario is drilled with."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oncall.alerting import Rule
from oncall.clients.metrics import ServiceMetrics
from oncall.clients.probes import probe_http
from oncall.playbooks import (
    DbPoolExhaustedConfig,
    DegradedPerformanceConfig,
    HighApiErrorRateConfig,
    HighLatencyConfig,
    HighLLMLatencyConfig,
    MinorIssueConfig,
    PlaybookConfig,
    PodCrashLoopConfig,
    ServiceDownConfig,
    WeaviateDownConfig,
)
from oncall_sandbox import SCENARIOS, Sandbox, ScenarioSpec


@dataclass(frozen=True)
class DrillPlan:
    """A scenario's playbook (a Prefect flow), its configuration, and the alert's rule."""

    scenario: ScenarioSpec
    playbook: Any
    config: PlaybookConfig
    rule: Rule


def _timing(scale: float, approval_timeout_s: int) -> dict[str, Any]:
    """Waits compressed like the sandbox's clock (never below what a scrape needs)."""
    return {
        "approval_timeout_s": approval_timeout_s,
        "approval_poll_s": 1,
        "rollout_timeout_s": max(15.0, 600 * scale),
        "verify_checks": 3,
        "verify_window_s": max(0.5, 30 * scale),
        "verify_timeout_s": max(20.0, 900 * scale),
        "escalation_time_scale": scale,
    }


PROMETHEUS_SCRAPE_S = 0.5
"""How often the drills' Prometheus scrapes (the stand-in's interval)."""


def _config(
    spec: ScenarioSpec, sandbox: Sandbox, scale: float, approval_timeout_s: int
) -> PlaybookConfig:
    url = sandbox.service_url
    timing = _timing(scale, approval_timeout_s)
    gremlins = {
        "weaviate": url("gremlinsai", "weaviate") + "/v1/meta",
        "ollama": url("gremlinsai", "ollama") + "/api/tags",
    }
    cronos = {"service_url": url("cronos-ai", "cronos-ai"), **timing}
    builders: dict[str, Callable[[], PlaybookConfig]] = {
        "bad-deploy": lambda: HighApiErrorRateConfig(
            service_url=url("gremlinsai", "gremlinsai-service"), dependency_urls=gremlins, **timing
        ),
        "llm-latency": lambda: HighLLMLatencyConfig(
            service_url=url("gremlinsai", "gremlinsai-service"),
            ollama_url=url("gremlinsai", "ollama"),
            **timing,
        ),
        "weaviate-down": lambda: WeaviateDownConfig(meta_url=gremlins["weaviate"], **timing),
        "service-down": lambda: ServiceDownConfig(**cronos),
        "degraded": lambda: DegradedPerformanceConfig(**cronos),
        "crash-loop": lambda: PodCrashLoopConfig(**cronos),
        "db-pool-exhausted": lambda: DbPoolExhaustedConfig(**cronos),
        "high-latency": lambda: HighLatencyConfig(**cronos),
        "minor": lambda: MinorIssueConfig(**{**cronos, "monitor_s": max(30.0, 1800 * scale)}),
    }
    config = builders[spec.name]()
    # A drill is an exercise on the sandbox: a decision typed into the Prefect UI counts
    # (recorded as unverified). Deployed playbooks keep the default, verified approvers
    # for rollbacks and switches of P1/P2 incidents.
    config.guard.verified_approver_required = {}
    # Metrics as in a real cluster: asked of Prometheus (the sandbox's stand-in), per pod.
    config.prometheus_url = sandbox.prometheus_url
    config.prometheus_scrape_interval_s = PROMETHEUS_SCRAPE_S
    return config


def _measure(spec: ScenarioSpec, sandbox: Sandbox, window_s: float) -> Callable[[], float | None]:
    alert, source = spec.alert, spec.alert.source
    if alert.metric == "probe_success":
        url = sandbox.service_url(source.namespace, source.service) + source.path
        return lambda: 1.0 if probe_http("probe", url, 2.0).ok else 0.0
    metrics = ServiceMetrics(sandbox.service_url(source.namespace, source.service))
    if alert.metric == "http_requests_total":
        return lambda: metrics.error_rate(window_s).rate
    if alert.metric.endswith("_seconds"):
        match = re.search(r"histogram_quantile\(([0-9.]+)", alert.expr)
        quantile = float(match.group(1)) if match else 0.95
        return lambda: metrics.latency_quantile(alert.metric, quantile, window_s)
    if alert.metric == "db_pool_connections_in_use":

        def pool_ratio() -> float | None:
            used, size = metrics.gauge("db_pool_connections_in_use"), metrics.gauge("db_pool_size")
            return None if used is None or not size else used / size

        return pool_ratio
    if alert.metric == "kube_pod_container_status_waiting_reason":
        labels = {"reason": "CrashLoopBackOff", "namespace": spec.namespace}
        return lambda: metrics.gauge(alert.metric, labels) or 0.0
    raise ValueError(f"no drill measure for metric {alert.metric}")


def _fires(spec: ScenarioSpec) -> Callable[[float], bool]:
    expr, threshold = spec.alert.expr, spec.alert.threshold
    if "== 0" in expr:
        return lambda value: value == 0
    if ">=" in expr:
        return lambda value: value >= threshold - 1e-9
    return lambda value: value > threshold


def plan_drill(name: str, sandbox: Sandbox, scale: float, approval_timeout_s: int) -> DrillPlan:
    """Everything a drill of scenario ``name`` needs, bound to a started sandbox."""
    from flows import catalog

    spec = SCENARIOS[name]
    window = max(0.3, 15 * scale)
    rule = Rule(
        name=spec.alert.alertname,
        fires=_fires(spec),
        for_s=spec.alert.for_seconds * scale,
        interval_s=window,
        measure=_measure(spec, sandbox, window),
        labels=dict(spec.alert.labels),
        annotations={"summary": spec.alert.summary, "expr": spec.alert.expr},
    )
    return DrillPlan(
        scenario=spec,
        playbook=catalog.PLAYBOOK_FOR_SCENARIO[name],
        config=_config(spec, sandbox, scale, approval_timeout_s),
        rule=rule,
    )
