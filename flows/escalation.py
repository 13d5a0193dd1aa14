"""One rung of the escalation ladder, fired by a durable timer (a scheduled flow run)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Completed

from oncall.models import Action, IncidentStatus
from oncall.settings import OncallSettings
from oncall.wiring import Clients
from tasks.incident import escalate, record_action


@flow(name="escalation-step", flow_run_name="escalate {incident_id} step {step} to {role}")
def escalation_step(incident_id: str, step: int, role: str) -> State[Any]:
    """Page the next rung of the escalation ladder unless a human has taken the incident."""
    clients = Clients(OncallSettings())
    incident = clients.store.get(incident_id)
    if incident.status is IncidentStatus.RESOLVED:
        return Completed(name="NotNeeded", message="incident already resolved")
    if incident.acknowledged_by:
        return Completed(name="NotNeeded", message=f"acknowledged by {incident.acknowledged_by}")
    contacts = clients.contacts_for(role, incident)
    get_run_logger().warning(
        "Escalating %s (step %d) to %s: %s", incident.id, step, role, ", ".join(contacts)
    )
    incident = record_action(
        clients.store,
        incident,
        Action(kind="page", target=role, detail={"step": step, "contacts": contacts}),
    )
    escalate(
        clients.store,
        clients.notifier,
        incident,
        f"step {step}: paged {role} ({', '.join(contacts)})",
        contacts,
    )
    return Completed(name="Paged", message=f"paged {role}: {', '.join(contacts)}")
