"""CRONOS playbook "P2 (High) - Degraded Performance" (p95 > 1 s, 5-10 % errors)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.observations import probes_summary
from oncall.playbooks import DegradedPerformanceConfig
from tasks.diagnosis import measure_error_rate, measure_latency, read_gauges
from tasks.health import check_deployment_health
from tasks.mitigations import plan_scale
from tasks.rollback import wait_for_rollout
from tasks.verify import verify_latency

PLAYBOOK = "degraded-performance"


@playbook_flow(PLAYBOOK)
def degraded_performance(
    alert: Alert, config: DegradedPerformanceConfig | None = None
) -> State[Any]:
    """Resource use, metrics, dependencies; scale up when saturated; verify p95 recovers."""
    config = config or DegradedPerformanceConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)
    metrics = run.clients.readings(config)
    run.acknowledge()

    # 1. Resource utilisation. 2. Metrics: latency and errors. 3. Dependencies.
    health = check_deployment_health(run.kube, config.namespace, config.deployment)
    gauges = read_gauges(metrics, [config.cpu_metric])
    p95 = measure_latency(metrics, config.latency_histogram, 0.95, config.verify_window_s)
    errors = measure_error_rate(metrics, config.verify_window_s)
    probes = [p.result() for p in run.probe_dependencies({"api": f"{config.service_url}/health"})]
    cpu = (gauges[config.cpu_metric] or 0.0) / max(health.ready_replicas, 1)
    findings = (
        f"p95 {p95 if p95 is not None else 'n/a'} s, 5xx {errors:.1%}, CPU {cpu:.0%} per pod "
        f"on {health.ready_replicas} pods; dependencies: " + probes_summary(probes)
    )
    run.diagnose(findings, probes, p95_s=p95, error_rate=errors, cpu_per_pod=cpu)
    down = [p.name for p in probes if not p.ok and p.name != "api"]
    if down:
        return run.escalate(
            f"dependencies down ({', '.join(down)}): scaling will not help; " + findings
        )

    # 4. Scale if needed.
    plan = plan_scale(run.kube, config.namespace, config.deployment, config.scale_to)
    applied = run.mitigate(plan, findings)
    if isinstance(applied, State):
        return applied
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
    return run.finish(verification, undo=plan.inverse())
