"""The incident lifecycle: what a person's acknowledgement and a resolution do, in one place.

Used by the playbooks (an approver's answer, a verified resolution), the CLI (``oncall
ack``), Slack (through the playbook's approval) and the PagerDuty webhook, so that each
of them stops the same timers, tells the same channels and starts the same post-incident
run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from prefect.client.schemas.objects import FlowRun

from oncall.clients.notify import Notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import OncallError
from oncall.models import Action, Alert, Incident, IncidentStatus, Severity, utcnow
from oncall.store import IncidentStore

POSTMORTEM_DEPLOYMENT = "post-incident/default"
POSTMORTEM_TAG = "postmortem"


def post_incident_key(incident_id: str) -> str:
    """The one idempotency key of an incident's post-incident run, whoever starts it (the
    playbook that resolved it, or the intake when the alert's resolved notification
    arrives): Prefect returns the run already created for it."""
    return f"post-incident:{incident_id}"


def timers_tag(incident_id: str) -> str:
    """The tag of an incident's escalation timers (scheduled runs)."""
    return f"incident:{incident_id}"


@dataclass(frozen=True)
class Acknowledged:
    """The incident after a person took it; how many timers stopped; whether they were
    the first to take it (a later acknowledgement changes nothing)."""

    incident: Incident
    cancelled: int
    first: bool


def acknowledge(
    store: IncidentStore,
    prefect: PrefectApi,
    notifier: Notifier | None,
    incident_id: str,
    who: str,
) -> Acknowledged:
    """A person has the incident: record them (the first one wins), stop the escalation
    timers, and acknowledge the page in PagerDuty on their behalf (``notifier``; None when
    the acknowledgement came from PagerDuty itself)."""
    before = store.get(incident_id)
    incident = store.acknowledge_by_human(incident_id, who)
    cancelled = prefect.cancel_scheduled(timers_tag(incident_id), f"acknowledged by {who}")
    first = before.acknowledged_by is None
    if first and notifier is not None:
        notifier.acknowledged(incident)
    return Acknowledged(incident, cancelled, first)


def resolve(
    store: IncidentStore,
    prefect: PrefectApi,
    incident_id: str,
    note: str,
) -> Incident:
    """Record the resolution (once) and stop the timers; the caller announces it."""
    incident = store.get(incident_id)
    if incident.status is not IncidentStatus.RESOLVED:
        incident = store.transition(incident_id, IncidentStatus.RESOLVED, note)
    prefect.cancel_scheduled(timers_tag(incident_id), "resolved")
    return incident


def close(
    store: IncidentStore,
    prefect: PrefectApi,
    notifier: Notifier,
    incident_id: str,
    who: str,
    note: str = "",
) -> tuple[Incident, FlowRun | None]:
    """A person resolves the incident: recorded as theirs (they had it), timers stop, the
    page is resolved, and its post-incident run starts (the same one, whoever asks)."""
    before = store.get(incident_id)
    if before.status is IncidentStatus.RESOLVED:
        raise OncallError(f"{incident_id} is already resolved; `oncall reopen` it first")
    store.acknowledge_by_human(incident_id, who)
    said = f"resolved by {who}" + (f": {note}" if note else "")
    incident = resolve(store, prefect, incident_id, said)
    notifier.resolved(incident, incident.transitions[-1].note)
    return incident, start_post_incident(prefect, incident_id)


def reopen(
    store: IncidentStore, notifier: Notifier, incident_id: str, who: str, reason: str
) -> Incident:
    """The problem is back: the resolved incident is open again and escalated, and the
    people are told (a page, as for any incident that needs one); whoever answers that
    page acknowledges it afresh."""
    before = store.get(incident_id)
    if before.status is not IncidentStatus.RESOLVED:
        raise OncallError(f"{incident_id} is {before.status}, not resolved: nothing to reopen")
    note = f"reopened by {who}: {reason}"
    store.clear_acknowledgement(incident_id)
    incident = store.transition(incident_id, IncidentStatus.ESCALATED, note)
    notifier.escalated(incident, note, [who])
    return incident


# `oncall escalate --to`: the seed's ladder, by the names people use.
ESCALATE_TO = {
    "secondary": "secondary",
    "manager": "escalation_manager",
    "vp": "vp_engineering",
}


def declare(
    store: IncidentStore,
    notifier: Notifier,
    service: str,
    severity: Severity,
    title: str,
    who: str,
) -> Incident:
    """An incident a person saw before any alert did: opened with them on it, announced,
    and paged as its severity says."""
    now = utcnow()
    alert = Alert(
        name="Declared",
        labels={
            "alertname": "Declared",
            "service": service,
            "severity": str(severity),
            "source": "declared",
        },
        annotations={"summary": title, "declared_by": who},
        starts_at=now,
        fingerprint=uuid.uuid4().hex[:16],
    )
    incident = store.create(
        Incident(id=Incident.id_for(alert), alert=alert, severity=severity, playbook="declared")
    )
    incident = store.acknowledge_by_human(incident.id, who)
    incident = store.transition(incident.id, IncidentStatus.ACKNOWLEDGED, f"declared by {who}")
    notifier.opened(incident)
    return incident


def escalate(
    store: IncidentStore,
    notifier: Notifier,
    incident_id: str,
    to: str,
    contacts: list[str],
    who: str,
    reason: str,
) -> Incident:
    """A person hands the incident on: recorded, and ``contacts`` are told (and paged as
    the severity says)."""
    incident = store.get(incident_id)
    if incident.status is IncidentStatus.RESOLVED:
        raise OncallError(f"{incident_id} is resolved; `oncall reopen` it first")
    note = f"escalated to {to} by {who}" + (f": {reason}" if reason else "")
    store.add_action(
        incident_id,
        Action(kind="page", target=to, detail={"contacts": contacts, "by": who, "step": 0}),
    )
    incident = store.transition(incident_id, IncidentStatus.ESCALATED, note)
    notifier.escalated(incident, note, contacts)
    return incident


def start_post_incident(prefect: PrefectApi, incident_id: str) -> FlowRun | None:
    """Create the incident's post-incident run, due now (None if the deployment is missing).

    Idempotent under ``post_incident_key``. Its tags deliberately omit ``incident:<id>``:
    resolving cancels every scheduled run with that tag.
    """
    return prefect.schedule_run(
        POSTMORTEM_DEPLOYMENT,
        parameters={"incident_id": incident_id},
        at=utcnow(),
        idempotency_key=post_incident_key(incident_id),
        tags=[POSTMORTEM_TAG, f"postmortem:{incident_id}"],
    )
