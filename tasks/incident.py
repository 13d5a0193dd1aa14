"""Incident bookkeeping: open, acknowledge, escalate, resolve. Every step is recorded."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncall import lifecycle
from oncall.clients.notify import Notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import NotFoundError
from oncall.models import Action, Alert, Approval, Incident, IncidentStatus, Severity
from oncall.retrying import retry_if_transient
from oncall.store import IncidentStore
from oncall.subjects import Subject

# Store writes are idempotent per call and retried while the database is unreachable.
store_task = task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)


@store_task
def open_incident(store: IncidentStore, alert: Alert, playbook: str) -> Incident:
    """Open the incident for this alert occurrence (or pick up the one already open)."""
    incident_id = Incident.id_for(alert)
    try:
        incident = store.get(incident_id)
    except NotFoundError:
        incident = store.create(
            Incident(
                id=incident_id,
                alert=alert,
                severity=Severity.from_labels(alert.labels),
                playbook=playbook,
            )
        )
    run_id = flow_run.get_id()
    if run_id and incident.flow_run_id != run_id:
        incident = store.attach_flow_run(incident.id, run_id)
    get_run_logger().info(
        "Incident %s opened: %s (response target %s)",
        incident.id,
        incident.title,
        incident.severity.response_target,
    )
    return incident


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def label_incident_run(prefect: PrefectApi, incident: Incident) -> None:
    """Tag the flow run with severity and service so the UI's run list reads as incidents."""
    run_id = flow_run.get_id()
    if run_id:
        prefect.add_tags(
            run_id,  # type: ignore[arg-type]
            [
                f"severity:{incident.severity}",
                f"service:{incident.service}",
                f"incident:{incident.id}",
                f"alert:{incident.alert.name}",
            ],
        )


@store_task
def record_subject(store: IncidentStore, incident: Incident, subject: Subject) -> Incident:
    """Keep what the alert is about on the incident (Slack, approval form, postmortem)."""
    return store.set_subject(incident.id, subject)


def tag_subject(prefect: PrefectApi, subject: Subject) -> None:
    """Tag the flow run with its subject, so the UI's run list says what it worked on."""
    run_id = flow_run.get_id()
    if run_id:
        prefect.add_tags(run_id, [f"subject:{subject.ref}"])  # type: ignore[arg-type]


@store_task
def acknowledge(store: IncidentStore, notifier: Notifier, incident: Incident) -> Incident:
    """Seed step 1: the playbook has picked the alert up (the pager stays with people)."""
    incident = store.transition(incident.id, IncidentStatus.ACKNOWLEDGED, "playbook started")
    # Not an acknowledgement in PagerDuty: that would stop its escalation policy, and
    # only a person's answer does that (oncall.lifecycle.acknowledge).
    notifier.step(incident, f"Picked up by playbook `{incident.playbook}`")
    return incident


@store_task
def record_action(store: IncidentStore, incident: Incident, action: Action) -> Incident:
    """Write an action (done, refused, or only planned) onto the incident."""
    return store.add_action(incident.id, action)


@store_task
def escalate(
    store: IncidentStore,
    notifier: Notifier,
    incident: Incident,
    reason: str,
    contacts: list[str] | None = None,
) -> Incident:
    """Hand the incident to a human: record why and tell (mention) the people paged."""
    incident = store.transition(incident.id, IncidentStatus.ESCALATED, reason)
    notifier.escalated(incident, reason, contacts if contacts is not None else _paged(incident))
    get_run_logger().warning("Escalated %s: %s", incident.id, reason)
    return incident


@store_task
def mark_mitigated(store: IncidentStore, incident: Incident, note: str) -> Incident:
    """Record that a mitigation was applied (not yet verified)."""
    return store.transition(incident.id, IncidentStatus.MITIGATED, note)


@store_task
def resolve(
    store: IncidentStore, prefect: PrefectApi, notifier: Notifier, incident: Incident, note: str
) -> Incident:
    """Record the verified resolution, stop the timers and announce it."""
    incident = lifecycle.resolve(store, prefect, incident.id, note)
    notifier.resolved(incident, note)
    return incident


@store_task
def record_approval(store: IncidentStore, incident: Incident, approval: Approval) -> Incident:
    """Write the human's decision (approver, decision, reason, time) onto the incident."""
    return store.add_approval(incident.id, approval)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 4])
def acknowledge_by_human(
    store: IncidentStore, prefect: PrefectApi, notifier: Notifier, incident: Incident, who: str
) -> Incident:
    """A person has taken the incident: timers stop, PagerDuty is acknowledged for them."""
    return lifecycle.acknowledge(store, prefect, notifier, incident.id, who).incident


def _paged(incident: Incident) -> list[str]:
    """Who the escalation step just paged (its ``page`` action, recorded right before)."""
    last = incident.actions[-1] if incident.actions else None
    return [str(c) for c in last.detail.get("contacts", [])] if last and last.kind == "page" else []
