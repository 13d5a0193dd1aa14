"""CRONOS playbook "Common Issues: High Latency" (slow queries, cache hit rate)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.clients.service_admin import ServiceAdmin
from oncall.models import Alert
from oncall.observations import ChangePlan, probes_summary
from oncall.playbooks import HighLatencyConfig
from tasks.diagnosis import measure_latency, read_gauges, read_slow_queries
from tasks.mitigations import plan_scale, plan_warm_cache
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_latency

PLAYBOOK = "high-latency"
# Below this hit rate the cache, not the CPU, explains the latency.
COLD_CACHE = 0.8


@playbook_flow(PLAYBOOK)
def high_latency(alert: Alert, config: HighLatencyConfig | None = None) -> State[Any]:
    """Slow queries and cache hit rate; warm the cache when it is cold, else scale; verify p95."""
    config = config or HighLatencyConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)
    run.acknowledge()

    # Investigation: slow queries, cache hit rate, current p95; the cache and database.
    probing = run.probe_dependencies()
    slow = read_slow_queries(ServiceAdmin(config.service_url))
    gauges = read_gauges(metrics, [config.cache_metric])
    p95 = measure_latency(metrics, config.latency_histogram, 0.95, config.verify_window_s)
    hit_rate = gauges[config.cache_metric]
    hit_rate = 1.0 if hit_rate is None else hit_rate
    probes = [p.result() for p in probing]
    findings = (
        f"p95 {p95 if p95 is not None else 'n/a'} s; cache hit rate {hit_rate:.0%}; "
        f"{len(slow)} slow queries (slowest {slow[0]['mean_ms'] if slow else 0:.0f} ms); "
        "dependencies " + probes_summary(probes)
    )
    run.diagnose(findings, probes, p95_s=p95, cache_hit_rate=hit_rate, slow_queries=slow[:5])

    # Solutions: "Warm up caches" when the cache is cold, else "Scale horizontally".
    plan: ChangePlan
    if hit_rate < COLD_CACHE:
        plan = plan_warm_cache(
            config.namespace, config.service, f"{config.service_url}{config.warm_path}"
        )
    else:
        plan = plan_scale(run.kube, config.namespace, config.deployment, config.scale_to)
    applied = run.mitigate(plan, findings)
    if isinstance(applied, State):
        return applied
    if plan.kind == "scale":
        wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)
    verification = verify_latency(
        metrics,
        config.latency_histogram,
        0.95,
        config.latency_threshold_s,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    return run.finish(verification, undo=plan.inverse() if plan.kind == "scale" else None)
