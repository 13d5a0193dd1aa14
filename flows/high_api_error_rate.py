"""GremlinsAI playbook "Critical Alert: HighApiErrorRate" (API 5xx > 5 % for 2+ minutes)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from flows.naming import incident_run_name
from oncall.clients import Clients
from oncall.clients.metrics import ServiceMetrics
from oncall.models import Action, Alert, Incident
from oncall.observations import Diagnosis, RollbackPlan
from oncall.playbooks import HighApiErrorRateConfig
from oncall.settings import OncallSettings
from tasks.approval import await_approval
from tasks.changes import find_recent_change
from tasks.dependencies import probe_http, probe_postgres, probe_redis
from tasks.health import check_deployment_health
from tasks.incident import (
    acknowledge,
    escalate,
    label_incident_run,
    mark_mitigated,
    open_incident,
    record_action,
    record_approval,
    resolve,
)
from tasks.rollback import plan_rollback, rollback_deployment, wait_for_rollout
from tasks.verify import verify_error_rate

PLAYBOOK = "high-api-error-rate"


@flow(name=PLAYBOOK, flow_run_name=incident_run_name, log_prints=True)
def high_api_error_rate(alert: Alert, config: HighApiErrorRateConfig) -> State[Any]:
    """Find the release behind a 5xx spike, roll it back with approval, verify the rate drops."""
    clients = Clients(OncallSettings())
    settings, store, kube, notifier = (
        clients.settings,
        clients.store,
        clients.kube,
        clients.notifier,
    )

    # Immediate response (0-5 min): acknowledge, quick health check.
    incident = open_incident(store, alert, PLAYBOOK)
    label_incident_run(clients.prefect, incident)
    incident = acknowledge(store, notifier, incident)
    health = [
        check_deployment_health.submit(kube, config.namespace, name) for name in config.deployments
    ]

    # Investigation (5-15 min): downstream dependencies, concurrently; recent changes.
    probes = [
        probe_postgres.submit(settings.postgres_dsn, settings.probe_timeout_s),
        probe_redis.submit(settings.redis_url, settings.probe_timeout_s),
        probe_http.submit("api", f"{config.service_url}/health", settings.probe_timeout_s),
        *(
            probe_http.submit(name, url, settings.probe_timeout_s)
            for name, url in config.dependency_urls.items()
        ),
    ]
    change = find_recent_change(
        kube, config.namespace, config.deployments, alert.starts_at, config.change_window_minutes
    )
    observed = Diagnosis(
        health=[h.result() for h in health], probes=[p.result() for p in probes], change=change
    )
    findings = observed.summary()
    incident = record_action(store, incident, observed.as_action(config.namespace))
    if change is None:
        escalate(store, notifier, incident, "no rollout correlates with the alert; " + findings)
        return Failed(name="Escalated", message="no recent deployment to roll back")

    # Mitigation (15-30 min): "if a recent deployment caused the issue, roll back".
    plan = plan_rollback(kube, config.namespace, change.deployment, change.previous_revision or 0)
    incident = record_action(store, incident, _planned(plan, config.dry_run))
    decision = None
    if config.require_approval:
        decision, approval = await_approval(
            clients.prefect,
            _approval_text(incident, plan, findings),
            config.approval_timeout_s,
            config.approval_poll_s,
        )
        incident = record_approval(store, incident, approval)
        if decision is None or not decision.approve:
            escalate(store, notifier, incident, f"rollback {approval.decision}: nothing changed")
            return Failed(name="Escalated", message=f"rollback {approval.decision}")
    result = rollback_deployment(
        kube, plan, decision, config.allowed_namespaces, config.require_approval, config.dry_run
    )
    if result is None:
        notifier.notify(incident, "dry run: rollback planned, nothing changed")
        return Completed(name="DryRun", message=plan.describe())
    after = wait_for_rollout(kube, config.namespace, plan.deployment, config.rollout_timeout_s)
    incident = record_action(
        store,
        incident,
        Action(
            kind="rollback",
            target=f"{plan.namespace}/{plan.deployment}",
            detail={**result.model_dump(), "new_revision": after.revision},
        ),
    )
    incident = mark_mitigated(
        store, incident, f"rolled back to {', '.join(plan.target_images)} (rev {after.revision})"
    )

    # Verify: the error rate must stay under the alert's threshold.
    verification = verify_error_rate(
        ServiceMetrics(config.service_url),
        config.error_rate_threshold,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
    )
    if not verification.passed:
        escalate(
            store, notifier, incident, f"rollback did not clear the alert: {verification.detail}"
        )
        return Failed(name="Escalated", message=verification.detail)
    resolve(store, notifier, incident, verification.detail)
    return Completed(name="Resolved", message=verification.detail)


def _planned(plan: RollbackPlan, dry_run: bool) -> Action:
    return Action(
        kind="rollback-planned",
        target=f"{plan.namespace}/{plan.deployment}",
        detail=plan.model_dump(),
        dry_run=dry_run,
    )


def _approval_text(incident: Incident, plan: RollbackPlan, findings: str) -> str:
    return (
        f"### {incident.title}\n\n"
        f"**Incident** `{incident.id}` · severity {incident.severity} "
        f"({incident.severity.label}, respond within {incident.severity.response_target})\n\n"
        f"**Findings:** {findings}\n\n"
        f"**Proposed (dry-run plan):** {plan.describe()}\n\n"
        "Tick *approve* and give your name to roll back; leave it unticked to reject "
        "(the incident escalates and nothing changes)."
    )
