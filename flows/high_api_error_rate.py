"""GremlinsAI playbook "Critical Alert: HighApiErrorRate" (API 5xx > 5 % for 2+ minutes)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.errors import UnsafeToRemediate
from oncall.models import Action, Alert
from oncall.observations import ChangePlan, Diagnosis
from oncall.playbooks import HighApiErrorRateConfig
from tasks.changes import find_recent_change
from tasks.health import check_deployment_health
from tasks.mitigations import plan_service_switch
from tasks.rollback import plan_rollback, wait_for_rollout
from tasks.verify import verify_error_rate

PLAYBOOK = "high-api-error-rate"


@playbook_flow(PLAYBOOK)
def high_api_error_rate(alert: Alert, config: HighApiErrorRateConfig | None = None) -> State[Any]:
    """Find the release behind a 5xx spike, roll it back or switch colour with approval, verify."""
    config = config or HighApiErrorRateConfig()
    run = PlaybookRun(PLAYBOOK, alert, config)

    # Immediate response (0-5 min): acknowledge, quick health check of pods and rollouts.
    run.acknowledge()
    health = [
        check_deployment_health.submit(run.kube, config.namespace, name)
        for name in config.deployments
    ]

    # Investigation (5-15 min): downstream dependencies concurrently; recent changes.
    probes = run.probe_dependencies({"api": f"{config.service_url}/health"})
    change = find_recent_change(
        run.kube,
        config.namespace,
        config.deployments,
        alert.starts_at,
        config.change_window_minutes,
    )
    diagnosis = Diagnosis(
        health=[h.result() for h in health], probes=[p.result() for p in probes], change=change
    )
    run.record(diagnosis.as_action(config.namespace))
    if change is None or change.previous_revision is None:
        return run.escalate("no rollout correlates with the alert; " + diagnosis.summary())

    # Mitigation (15-30 min): "if a recent deployment caused the issue": roll back or switch.
    try:
        plan = _plan(run, config, change.deployment, change.previous_revision)
    except UnsafeToRemediate as exc:
        return run.escalate(f"no safe mitigation: {exc}")
    applied = run.mitigate(plan, diagnosis.summary())
    if isinstance(applied, State):
        return applied
    if plan.kind == "rollback":
        after = wait_for_rollout(
            run.kube, config.namespace, change.deployment, config.rollout_timeout_s
        )
        run.record(
            Action(
                kind="rollout",
                target=f"{config.namespace}/deployment/{change.deployment}",
                detail={
                    "revision": after.revision,
                    "images": after.images,
                    "complete": after.rollout_complete,
                },
            )
        )

    # Verify: the 5xx rate must stay under the alert's threshold ("validate-deployment").
    verification = verify_error_rate(
        run.clients.readings(config),
        config.error_rate_threshold,
        config.verify_checks,
        config.verify_window_s,
        config.verify_timeout_s,
        analysis=config.verify_analysis,
    )
    return run.finish(verification, undo=plan.inverse())


def _plan(
    run: PlaybookRun, config: HighApiErrorRateConfig, deployment: str, previous: int
) -> ChangePlan:
    if config.mitigation == "switch":
        # Blue/green: send traffic to the colour that did not just change.
        colour = "green" if deployment.endswith("blue") else "blue"
        return plan_service_switch(run.kube, config.namespace, config.service, {"version": colour})
    return plan_rollback(run.kube, config.namespace, deployment, previous)
