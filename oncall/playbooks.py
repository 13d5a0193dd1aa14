"""Playbook configurations: the data half of "a playbook is data plus one flow"."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from oncall.clients.promql_metrics import MetricQueries
from oncall.guards import GuardPolicy
from oncall.models import Severity
from oncall.observations import VerifyAnalysis


class EscalationStep(BaseModel):
    """One rung of the escalation ladder: who is paged how long after the alert."""

    after_minutes: float = Field(gt=0, description="Minutes after the incident opened.")
    role: str = Field(
        description="Who is paged: a rotation role or an escalation contact (rotation file)."
    )


def sla_ladder(severity: Severity) -> list[EscalationStep]:
    """CRONOS ladder: no human response within the target -> secondary; unresolved at the
    resolution target -> the engineering manager ("issue persists beyond resolution target")."""
    return [
        EscalationStep(
            after_minutes=severity.response_target.total_seconds() / 60, role="secondary"
        ),
        EscalationStep(
            after_minutes=severity.resolution_target.total_seconds() / 60,
            role="engineering_manager",
        ),
    ]


def ladder_for(escalation: list[EscalationStep] | None, severity: Severity) -> list[EscalationStep]:
    """The rungs an incident of ``severity`` climbs: a playbook's own ladder (the GremlinsAI
    seed's, written for its critical alerts) for P1; the CRONOS SLA targets for P2 and P3
    (and for P1 without a ladder of its own); none for P4, which stays in Slack."""
    if severity is Severity.P4:
        return []
    if escalation is not None and severity is Severity.P1:
        return escalation
    return sla_ladder(severity)


# GremlinsAI seed, "Escalation Timeline": 15 min secondary, 30 min manager, 1 h VP.
SEED_LADDER = [
    EscalationStep(after_minutes=15, role="secondary"),
    EscalationStep(after_minutes=30, role="escalation_manager"),
    EscalationStep(after_minutes=60, role="vp_engineering"),
]


class PlaybookConfig(BaseModel):
    """What every playbook has: guards, the approval wait and the verification windows."""

    namespace: str = Field(description="Namespace of the workload the playbook works on.")
    guard: GuardPolicy = Field(default_factory=GuardPolicy, description="Limits on actions.")
    approval_timeout_s: int = Field(
        default=900, ge=1, description="How long to wait for an approval before escalating."
    )
    approval_poll_s: int = Field(default=2, ge=1, description="How often the pause checks in.")
    rollout_timeout_s: float = Field(
        default=300, gt=0, description="How long a mitigation's rollout may take."
    )
    verify_checks: int = Field(
        default=3, ge=1, description="Consecutive healthy windows that count as resolved."
    )
    verify_window_s: float = Field(default=30, gt=0, description="Length of one check window.")
    verify_timeout_s: float = Field(
        default=600, gt=0, description="Give up verifying (and escalate) after this long."
    )
    verify_analysis: VerifyAnalysis = Field(
        default_factory=VerifyAnalysis,
        description="How the verification judges no data, failed and unhealthy measurements.",
    )
    relabel: dict[str, str] = Field(
        default_factory=dict,
        description="Alert label -> standard subject label (deployment, statefulset, pod, "
        "service, ...), for alerts that name their subject differently.",
    )
    dependency_urls: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP health endpoints of dependencies to probe (name -> URL).",
    )
    escalation: list[EscalationStep] | None = Field(
        default_factory=lambda: list(SEED_LADDER),
        description="Escalation timers, started when the incident opens; None: from the "
        "severity's response and resolution targets (CRONOS SLA table).",
    )
    escalation_time_scale: float = Field(
        default=1.0, gt=0, le=1, description="Compress the ladder's minutes (drills only)."
    )
    alertmanager_url: str | None = Field(
        default=None,
        description="Alertmanager that must see the alert end before the incident is "
        "resolved (default: ONCALL_ALERTMANAGER_URL; neither: not checked).",
    )
    alert_clear_timeout_s: float = Field(
        default=300, ge=0, description="How long the alert may take to clear; then escalate."
    )
    alert_clear_interval_s: float = Field(
        default=10, gt=0, description="How often Alertmanager is asked while waiting."
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus of this playbook's cluster (default: ONCALL_PROMETHEUS_URL).",
    )
    prometheus_scrape_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="That Prometheus' scrape interval (ONCALL_PROMETHEUS_SCRAPE_INTERVAL_S).",
    )
    prometheus_queries: MetricQueries = Field(
        default_factory=MetricQueries,
        description="The PromQL asked for requests, 5xx, latency and gauges (templates).",
    )
    prometheus_labels: dict[str, str] | None = Field(
        default=None,
        description="Labels that select the service's series in Prometheus (default: "
        "namespace and service, as kubernetes_sd relabelling and ServiceMonitors set them).",
    )

    def metrics_labels(self) -> dict[str, str]:
        """The labels of the service's series: configured, else namespace and Service name."""
        if self.prometheus_labels is not None:
            return dict(self.prometheus_labels)
        service = getattr(self, "service", None)
        if not service:
            # http://SERVICE.NAMESPACE[.svc...]:PORT names its Service; an address does not.
            host = urlsplit(getattr(self, "service_url", "") or "").hostname or ""
            if host and not host.replace(".", "").isdigit() and host != "localhost":
                service = host.split(".")[0]
        labels = {"namespace": self.namespace}
        if service:
            labels["service"] = str(service)
        return labels


class HighApiErrorRateConfig(PlaybookConfig):
    """GremlinsAI "Critical Alert: HighApiErrorRate": targets, thresholds and guards."""

    namespace: str = Field(default="gremlinsai", description="Namespace of the backend.")
    guard: GuardPolicy = Field(
        default_factory=lambda: GuardPolicy(allowed_namespaces=["gremlinsai"])
    )
    deployments: list[str] = Field(
        default=["gremlinsai-backend-blue", "gremlinsai-backend-green"],
        description="Deployments behind the API whose recent rollouts are suspects.",
    )
    service: str = Field(default="gremlinsai-service", description="The API's Service.")
    service_url: str = Field(
        default="http://gremlinsai-service.gremlinsai:8000",
        description="Base URL of the API service (its /health and /metrics).",
    )
    error_rate_threshold: float = Field(
        default=0.05, gt=0, lt=1, description="5xx share above which the API is unhealthy."
    )
    change_window_minutes: float = Field(
        default=60, gt=0, description="A rollout this long before the alert is a suspect."
    )
    mitigation: Literal["rollback", "switch"] = Field(
        default="rollback",
        description="Seed step 7's alternatives: roll the bad deployment back, or switch the "
        "Service to the other colour.",
    )


def _guard(namespace: str, **extra: object) -> GuardPolicy:
    return GuardPolicy.model_validate({"allowed_namespaces": [namespace], **extra})


class HighLLMLatencyConfig(PlaybookConfig):
    """GremlinsAI "Critical Alert: HighLLMLatency" (LLM p99 > 10 s for 3+ minutes)."""

    namespace: str = "gremlinsai"
    guard: GuardPolicy = Field(default_factory=lambda: _guard("gremlinsai"))
    ollama_deployment: str = Field(default="ollama", description="The LLM server deployment.")
    ollama_selector: dict[str, str] = Field(default_factory=lambda: {"app": "ollama"})
    ollama_url: str = Field(default="http://ollama.gremlinsai:11434", description="Ollama API.")
    service: str = Field(
        default="gremlinsai-service", description="The API's Service (its series' label)."
    )
    service_url: str = Field(
        default="http://gremlinsai-service.gremlinsai:8000",
        description="The API service whose metrics carry the LLM latency histogram.",
    )
    latency_histogram: str = "llm_request_duration_seconds"
    quantile: float = Field(default=0.99, gt=0, lt=1)
    threshold_s: float = Field(default=10.0, gt=0, description="Alert threshold (seconds).")
    scale_to: int = Field(default=2, ge=1, description="Ollama replicas when scaling up.")
    backend_deployments: list[str] = Field(
        default=["gremlinsai-backend-blue", "gremlinsai-backend-green"]
    )
    backend_container: str = "backend"
    fallback_env: dict[str, str] = Field(
        default_factory=lambda: {"LLM_PROVIDER": "fallback"},
        description="Env that switches the backend to the fallback LLM provider.",
    )


class WeaviateDownConfig(PlaybookConfig):
    """GremlinsAI "Critical Alert: WeaviateDown" (Weaviate unreachable for 1+ minute)."""

    namespace: str = "gremlinsai"
    guard: GuardPolicy = Field(default_factory=lambda: _guard("gremlinsai"))
    deployment: str = "weaviate"
    service: str = "weaviate"
    selector: dict[str, str] = Field(default_factory=lambda: {"app": "weaviate"})
    meta_url: str = Field(default="http://weaviate.gremlinsai:8080/v1/meta")
    pvc: str = Field(default="weaviate-data", description="Weaviate's data volume claim.")


class CronosConfig(PlaybookConfig):
    """What every CRONOS AI playbook works on: the cronos-ai deployment and service."""

    escalation: list[EscalationStep] | None = Field(
        default=None, description="None: escalate on the severity's SLA targets."
    )
    namespace: str = "cronos-ai"
    guard: GuardPolicy = Field(default_factory=lambda: _guard("cronos-ai"))
    deployment: str = "cronos-ai"
    container: str = "cronos-ai"
    service: str = "cronos-ai"
    selector: dict[str, str] = Field(default_factory=lambda: {"app": "cronos-ai"})
    service_url: str = Field(default="http://cronos-ai.cronos-ai:8080")
    error_rate_threshold: float = Field(default=0.05, gt=0, lt=1)
    latency_histogram: str = "http_request_duration_seconds"
    latency_threshold_s: float = Field(default=1.0, gt=0, description="p95 latency target.")
    scale_to: int = Field(default=5, ge=1, description="Replicas when scaling up.")


class ServiceDownConfig(CronosConfig):
    """CRONOS "P1 (Critical) - Service Down"."""


class DegradedPerformanceConfig(CronosConfig):
    """CRONOS "P2 (High) - Degraded Performance"."""

    cpu_metric: str = Field(default="cpu_utilization_ratio", description="CPU use gauge.")


class MinorIssueConfig(CronosConfig):
    """CRONOS "P3 (Medium) - Minor Issues": document, ticket, monitor, escalate if it grows."""

    error_rate_threshold: float = Field(default=0.01, gt=0, lt=1, description="P3 threshold.")
    grows_above: float = Field(
        default=0.05, gt=0, lt=1, description="An error rate that makes it a P2: escalate."
    )
    monitor_s: float = Field(default=1800, gt=0, description="How long to watch it.")


class HighErrorRateConfig(CronosConfig):
    """CRONOS "Common Issues: High Error Rate"."""


class HighLatencyConfig(CronosConfig):
    """CRONOS "Common Issues: High Latency" (slow queries, cache hit rate)."""

    cache_metric: str = "cache_hit_rate"
    slow_queries_path: str = "/debug/slow_queries"
    warm_path: str = "/admin/cache/warm"


class PodCrashLoopConfig(CronosConfig):
    """CRONOS "Common Issues: Pod Crash Loop", on the workload the alert names."""

    guard: GuardPolicy = Field(
        default_factory=GuardPolicy,
        description="Overrides of the subject's catalog guard policy: only the fields given "
        "here replace the entry's (allowed_namespaces come from the entry unless given).",
    )

    config_map: str = Field(
        default="cronos-ai-config", description="The ConfigMap `known_good` is about."
    )
    known_good: dict[str, str] = Field(
        default_factory=dict,
        description="Known-good values of `config_map`'s keys, overriding the catalog "
        "entry's `known_good` (the fix to apply); empty: the catalog's.",
    )


class DbPoolExhaustedConfig(CronosConfig):
    """CRONOS "Common Issues: Database Connection Pool Exhausted"."""

    pool_env: str = "DB_POOL_SIZE"
    pool_size: int = Field(default=50, ge=1, description="Raised pool size (seed: 50).")
    in_use_metric: str = "db_pool_connections_in_use"
    size_metric: str = "db_pool_size"
