"""What each scenario is, for drills, playbooks and tests: seed section, alert, probes, fix."""

from __future__ import annotations

from dataclasses import dataclass, field

GREMLINS_SEED = "GremlinsAI Production On-Call Playbook"
CRONOS_SEED = "CRONOS AI - On-Call Playbook"
_ERROR_RATIO = (
    'sum(rate(http_requests_total{{code=~"5.."}}[{w}])) / sum(rate(http_requests_total[{w}]))'
)


def error_ratio(window: str) -> str:
    """PromQL of the 5xx share of a Service's requests."""
    return _ERROR_RATIO.format(w=window)


def p_latency(quantile: float, metric: str, window: str) -> str:
    """PromQL of a latency quantile from a histogram."""
    return f"histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket[{window}])))"


@dataclass(frozen=True)
class Endpoint:
    """A Service path: `sandbox.service_url(namespace, service) + path`."""

    namespace: str
    service: str
    path: str = ""


@dataclass(frozen=True)
class AlertSpec:
    """The Prometheus alert a scenario raises and what fires it."""

    alertname: str
    labels: dict[str, str]
    expr: str
    for_seconds: float
    threshold: float
    metric: str
    source: Endpoint  # where the metric is scraped (or, for a probe alert, what is probed)
    summary: str


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario as drills and tests see it."""

    name: str
    namespace: str
    seed: str
    seed_section: str
    priority: str
    fault: str
    alert: AlertSpec
    probes: tuple[Endpoint, ...]
    remediation: str
    ineffective: str
    deployment: str
    self_heals_after_seconds: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def probe_service(self) -> Endpoint:
        """The first Service the playbook probes (its health)."""
        return self.probes[0]


def _labels(severity: str, priority: str, service: str, namespace: str) -> dict[str, str]:
    return {
        "severity": severity,
        "priority": priority,
        "service": service,
        "namespace": namespace,
    }


_G, _C = "gremlinsai", "cronos-ai"
_BACKEND_SVC = Endpoint(_G, "gremlinsai-service", "/health")
_WEAVIATE = Endpoint(_G, "weaviate", "/v1/meta")
_OLLAMA = Endpoint(_G, "ollama", "/api/tags")
_CRONOS = Endpoint(_C, "cronos-ai", "/health")
_CRONOS_METRICS = Endpoint(_C, "cronos-ai", "/metrics")
_KSM = Endpoint("kube-system", "kube-state-metrics", "/metrics")

SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: s
    for s in (
        ScenarioSpec(
            name="bad-deploy",
            namespace=_G,
            seed=GREMLINS_SEED,
            seed_section="Critical Alert: HighApiErrorRate",
            priority="P1",
            fault="Release ghcr.io/gremlinsai/backend:1.5.0 rolled out to gremlinsai-backend-blue "
            "(revision 3): ~27 % of requests answer 500/502/503.",
            alert=AlertSpec(
                "HighApiErrorRate",
                _labels("critical", "P1", "gremlinsai-backend", _G),
                f"{error_ratio('2m')} > 0.05",
                120,
                0.05,
                "http_requests_total",
                Endpoint(_G, "gremlinsai-service", "/metrics"),
                "API 5xx error rate above 5%",
            ),
            probes=(_BACKEND_SVC, _WEAVIATE, _OLLAMA),
            remediation="kubectl rollout undo deployment/gremlinsai-backend-blue -n gremlinsai; or "
            "kubectl patch service gremlinsai-service -n gremlinsai "
            '-p \'{"spec":{"selector":{"version":"green"}}}\'',
            ineffective="kubectl rollout restart deployment/gremlinsai-backend-blue "
            "(the same 1.5.0 image comes back)",
            deployment="gremlinsai-backend-blue",
        ),
        ScenarioSpec(
            name="llm-latency",
            namespace=_G,
            seed=GREMLINS_SEED,
            seed_section="Critical Alert: HighLLMLatency",
            priority="P1",
            fault="The running Ollama pod's runner offloaded model layers to CPU after a burst of "
            "long prompts; it stays slow (~12 s per generation) while it carries more than 8 "
            "generations/s.",
            alert=AlertSpec(
                "HighLLMLatency",
                {**_labels("critical", "P1", "gremlinsai-backend", _G), "component": "llm"},
                f"{p_latency(0.99, 'llm_request_duration_seconds', '5m')} > 10",
                180,
                10.0,
                "llm_request_duration_seconds",
                Endpoint(_G, "gremlinsai-service", "/metrics"),
                "LLM P99 latency above 10 seconds",
            ),
            probes=(_OLLAMA, _BACKEND_SVC),
            remediation="kubectl rollout restart deployment/ollama -n gremlinsai; or kubectl scale "
            "deployment/ollama -n gremlinsai --replicas=2 (load per pod drops below 8/s); or "
            "kubectl set env deployment/gremlinsai-backend-blue -n gremlinsai "
            "LLM_PROVIDER=fallback (fallback provider; do green too if it serves)",
            ineffective="kubectl rollout restart deployment/gremlinsai-backend-blue, scaling the "
            "backend",
            deployment="ollama",
        ),
        ScenarioSpec(
            name="weaviate-down",
            namespace=_G,
            seed=GREMLINS_SEED,
            seed_section="Critical Alert: WeaviateDown",
            priority="P1",
            fault="Weaviate's pod lost its gossip membership: every start exits 1 with 'node name "
            "conflict' (a stale member holds its pod name), so it is in CrashLoopBackOff and "
            "weaviate:8080 has no ready endpoints. PVC weaviate-data stays Bound.",
            alert=AlertSpec(
                "WeaviateDown",
                _labels("critical", "P1", "weaviate", _G),
                'probe_success{instance="http://weaviate:8080/v1/meta"} == 0',
                60,
                0.0,
                "probe_success",
                _WEAVIATE,
                "Weaviate cluster unreachable",
            ),
            probes=(_WEAVIATE, _BACKEND_SVC),
            remediation="kubectl rollout restart deployment/weaviate -n gremlinsai (new pods get "
            "new names and join cleanly; deleting the pod works too)",
            ineffective="waiting (the kubelet's restarts keep the pod name), restarting the "
            "backend",
            deployment="weaviate",
        ),
        ScenarioSpec(
            name="service-down",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="P1 (Critical) - Service Down",
            priority="P1",
            fault="Release ghcr.io/cronos-ai/cronos-ai:2.5.0 (strategy Recreate) crashes at import "
            "(ModuleNotFoundError): every pod in CrashLoopBackOff, no ready endpoints, 100 % 503.",
            alert=AlertSpec(
                "CronosServiceDown",
                _labels("critical", "P1", "cronos-ai", _C),
                f"{error_ratio('1m')} > 0.5",
                60,
                0.5,
                "http_requests_total",
                _CRONOS_METRICS,
                "CRONOS AI is down: error rate above 50%, health checks failing",
            ),
            probes=(_CRONOS,),
            remediation="kubectl rollout undo deployment/cronos-ai -n cronos-ai",
            ineffective="kubectl rollout restart deployment/cronos-ai (same image), scaling",
            deployment="cronos-ai",
        ),
        ScenarioSpec(
            name="degraded",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="P2 (High) - Degraded Performance",
            priority="P2",
            fault="Traffic to cronos-ai rose from 20 to 45 requests/s: 3 pods at their 500m CPU "
            "limit (capacity 12 requests/s each): p95 > 1 s and 5-10 % 503/504.",
            alert=AlertSpec(
                "CronosDegradedPerformance",
                _labels("error", "P2", "cronos-ai", _C),
                f"{p_latency(0.95, 'http_request_duration_seconds', '5m')} > 1 "
                f"and {error_ratio('5m')} > 0.05",
                300,
                1.0,
                "http_request_duration_seconds",
                _CRONOS_METRICS,
                "CRONOS AI degraded: P95 latency above 1s, error rate 5-10%",
            ),
            probes=(_CRONOS,),
            remediation="kubectl scale deployment/cronos-ai -n cronos-ai --replicas=5",
            ineffective="kubectl rollout restart deployment/cronos-ai (same CPU per request)",
            deployment="cronos-ai",
            extra={"cpu_metric": "cpu_utilization_ratio"},
        ),
        ScenarioSpec(
            name="crash-loop",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="Common Issues and Solutions: Pod Crash Loop",
            priority="P2",
            fault="A config change set CACHE_TTL_SECONDS=30s in ConfigMap cronos-ai-config (and "
            "rolled the pods): the app exits 1 at start (ValueError), pods in CrashLoopBackOff; "
            "logs --previous shows the traceback.",
            alert=AlertSpec(
                "KubePodCrashLooping",
                _labels("error", "P2", "cronos-ai", _C),
                'max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff",'
                'namespace="cronos-ai"}[5m]) >= 1',
                300,
                1.0,
                "kube_pod_container_status_waiting_reason",
                _KSM,
                "Pod is crash looping",
            ),
            probes=(_CRONOS,),
            remediation="kubectl patch configmap cronos-ai-config -n cronos-ai "
            '-p \'{"data":{"CACHE_TTL_SECONDS":"300"}}\' then kubectl rollout restart '
            "deployment/cronos-ai (without the restart the pods pick the value up at their next "
            "back-off restart)",
            ineffective="kubectl rollout undo or rollout restart without fixing the ConfigMap; "
            "raising limits",
            deployment="cronos-ai",
            extra={"configmap": "cronos-ai-config", "key": "CACHE_TTL_SECONDS", "good": "300"},
        ),
        ScenarioSpec(
            name="db-pool-exhausted",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="Common Issues and Solutions: Database Connection Pool Exhausted",
            priority="P1",
            fault="A stuck export job leaks 3 DB connections per pod per minute (up to 20): with "
            "DB_POOL_SIZE=10 the pool is exhausted and ~60 % of requests fail 503/504 after the "
            "30 s pool timeout ('connection pool exhausted').",
            alert=AlertSpec(
                "DatabaseConnectionPoolExhausted",
                _labels("critical", "P1", "cronos-ai", _C),
                "max(db_pool_connections_in_use / db_pool_size) >= 1",
                120,
                1.0,
                "db_pool_connections_in_use",
                _CRONOS_METRICS,
                "DB connection pool exhausted",
            ),
            probes=(_CRONOS,),
            remediation="kubectl set env deployment/cronos-ai -n cronos-ai DB_POOL_SIZE=50 "
            "(in use plateaus at ~24). kubectl rollout restart deployment/cronos-ai only resets "
            "the connections: the pool is exhausted again ~2 simulated minutes later.",
            ineffective="kubectl rollout restart alone (temporary), scaling",
            deployment="cronos-ai",
            extra={"env": "DB_POOL_SIZE", "good": "50"},
        ),
        ScenarioSpec(
            name="high-latency",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="Common Issues and Solutions: High Latency",
            priority="P2",
            fault="Redis lost its keys (failover): cache hit rate fell from 94 % to 35 %, the "
            "misses run slow queries (1-3 s): p95 > 1 s, errors stay low.",
            alert=AlertSpec(
                "CronosHighLatency",
                _labels("error", "P2", "cronos-ai", _C),
                f"{p_latency(0.95, 'http_request_duration_seconds', '5m')} > 1",
                300,
                1.0,
                "http_request_duration_seconds",
                _CRONOS_METRICS,
                "CRONOS AI P95 latency above 1s",
            ),
            probes=(_CRONOS, Endpoint(_C, "cronos-ai", "/debug/slow_queries")),
            remediation="POST /admin/cache/warm on service cronos-ai (warm up caches: the hit "
            "rate is back to 94 % within 30 simulated seconds)",
            ineffective="kubectl scale (the database, not CPU, is the bottleneck), kubectl "
            "rollout restart (the cache is the shared Redis)",
            deployment="cronos-ai",
            extra={"warm_path": "/admin/cache/warm", "cache_metric": "cache_hit_rate"},
        ),
        ScenarioSpec(
            name="minor",
            namespace=_C,
            seed=CRONOS_SEED,
            seed_section="P3 (Medium) - Minor Issues",
            priority="P3",
            fault="The partner reports API resets connections: GET /api/v1/reports/export fails "
            "8 % of the time (about 2 % of all requests, 502); it recovers by itself after 15 "
            "simulated minutes.",
            alert=AlertSpec(
                "CronosIntermittentErrors",
                _labels("warning", "P3", "cronos-ai", _C),
                f"{error_ratio('5m')} > 0.01",
                300,
                0.01,
                "http_requests_total",
                _CRONOS_METRICS,
                "CRONOS AI intermittent errors",
            ),
            probes=(_CRONOS,),
            remediation="none: document, monitor; it heals by itself after 15 simulated minutes; "
            "escalate only if the error rate grows",
            ineffective="restarts, scaling, rollbacks (the fault is outside the cluster)",
            deployment="cronos-ai",
            self_heals_after_seconds=900.0,
        ),
    )
}
