"""Escalation timers: durable scheduled flow runs on the Prefect server, one per rung."""

from __future__ import annotations

from datetime import timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.business_hours import BusinessHours
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Incident
from oncall.playbooks import EscalationStep
from oncall.retrying import retry_if_transient

ESCALATION_DEPLOYMENT = "escalation-step/default"


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def schedule_escalations(
    prefect: PrefectApi,
    incident: Incident,
    ladder: list[EscalationStep],
    time_scale: float,
    business_hours: BusinessHours | None = None,
) -> int:
    """Schedule one escalation run per rung; they survive restarts of workers and server.

    With ``business_hours`` (P3), a rung due outside them is due at the next opening; a
    drill's compressed clock (``time_scale`` < 1) has no business hours.
    """
    opened = incident.transitions[0].at if incident.transitions else None
    if opened is None:
        return 0
    scheduled = 0
    for number, step in enumerate(ladder, start=1):
        at = opened + timedelta(minutes=step.after_minutes * time_scale)
        if business_hours is not None and time_scale == 1.0:
            at = business_hours.next_open(at)
        run = prefect.schedule_run(
            ESCALATION_DEPLOYMENT,
            parameters={"incident_id": incident.id, "step": number, "role": step.role},
            at=at,
            idempotency_key=f"{incident.id}:escalation:{number}",
            tags=[f"incident:{incident.id}", "escalation"],
        )
        if run is None:
            get_run_logger().warning(
                "Escalation timers NOT scheduled: deployment %s is not registered "
                "(run `oncall worker`)",
                ESCALATION_DEPLOYMENT,
            )
            return 0
        scheduled += 1
    get_run_logger().info("Scheduled %d escalation timer(s) for %s", scheduled, incident.id)
    return scheduled


@task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)
def cancel_escalations(prefect: PrefectApi, incident_id: str, reason: str) -> int:
    """Cancel the incident's escalation timers that have not fired yet."""
    cancelled = prefect.cancel_scheduled(f"incident:{incident_id}", reason)
    get_run_logger().info(
        "Cancelled %d escalation timer(s) of %s: %s", cancelled, incident_id, reason
    )
    return cancelled
