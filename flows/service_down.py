"""CRONOS playbook "P1 (Critical) - Service Down" (all health checks failing)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.errors import UnsafeToRemediate
from oncall.models import Action, Alert
from oncall.observations import probes_summary
from oncall.playbooks import ServiceDownConfig
from tasks.changes import read_rollout_history
from tasks.diagnosis import describe_pods, scan_logs
from tasks.health import check_deployment_health, check_endpoints
from tasks.rollback import plan_rollback, wait_for_rollout
from tasks.verify import verify_health_endpoint

PLAYBOOK = "service-down"


@playbook_flow(PLAYBOOK)
def service_down(alert: Alert, config: ServiceDownConfig | None = None) -> State[Any]:
    """Ticket, pods, endpoints, recent changes, error logs; roll back with approval; verify."""
    config = config or ServiceDownConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)

    # 1. Acknowledge and create the incident ticket (the incident record is the ticket).
    run.acknowledge()
    run.record(
        Action(
            kind="ticket",
            target=run.incident.id,
            detail={"severity": "P1", "title": "Service Down"},
        )
    )
    # 2. Service status: pods, endpoints.
    health = check_deployment_health(run.kube, config.namespace, config.deployment)
    pods = describe_pods(run.kube, config.namespace, config.selector)
    endpoints = check_endpoints(run.kube, config.namespace, config.service)
    # Is it the service, or what it depends on? (probed concurrently while we read on)
    probing = run.probe_dependencies()
    # 3. Recent changes: rollout history. 4. Logs, the crashed containers' too.
    history = read_rollout_history(run.kube, config.namespace, config.deployment)
    logs = scan_logs(run.kube, config.namespace, config.selector, 100, previous=True)
    probes = [p.result() for p in probing]
    findings = (
        f"{health.ready_replicas}/{health.replicas} ready, {len(endpoints)} endpoint(s); "
        f"revision {health.revision} ({', '.join(health.images)}); "
        f"{logs['error_lines']} error line(s) in crashed containers; dependencies "
        + probes_summary(probes)
    )
    run.diagnose(
        findings,
        probes,
        pods=pods,
        endpoints=endpoints,
        logs=logs,
        history=[r.model_dump(mode="json") for r in history],
    )

    # 5. Rollback if needed: to the newest revision with a different image than now.
    previous = next((r.revision for r in reversed(history) if r.images != health.images), None)
    if previous is None:
        return run.escalate("no earlier revision with another image to roll back to; " + findings)
    try:
        plan = plan_rollback(run.kube, config.namespace, config.deployment, previous)
    except UnsafeToRemediate as exc:
        return run.escalate(f"rollback unsafe: {exc}")
    applied = run.mitigate(plan, findings)
    if isinstance(applied, State):
        return applied
    wait_for_rollout(run.kube, config.namespace, config.deployment, config.rollout_timeout_s)

    # 6. Verify recovery: health checks answer again.
    verification = verify_health_endpoint(
        f"{config.service_url}/health",
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    return run.finish(verification, undo=plan.inverse())
