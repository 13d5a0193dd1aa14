"""Incidents as `GET /v1/incidents` and `oncall incidents list/show` show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import select

from oncall.errors import NotFoundError
from oncall.intake.inbox import Inbox, as_utc
from oncall.intake.tables import dispatches, occurrences, tracked_incidents
from oncall.models import Alert, Incident, IncidentStatus, Severity, Transition, utcnow


class OccurrenceView(BaseModel):
    """One alert occurrence the intake received for an incident."""

    occurrence_key: str
    role: str
    source: str
    alert_name: str
    status: str
    received_at: datetime
    last_seen_at: datetime
    times_seen: int
    resolved_at: datetime | None


class IncidentView(Incident):
    """The store's incident plus what the intake knows: occurrences, last seen, run state."""

    deployment: str | None = None
    last_seen_at: datetime | None = None
    alert_resolved_at: datetime | None = None
    flow_run_state: str | None = None
    playbook_finished_at: datetime | None = None
    post_incident_flow_run_id: str | None = None
    dispatch_error: str | None = None
    occurrences: list[OccurrenceView] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> IncidentStatus:
        """The latest transition's status."""
        return self.transitions[-1].status if self.transitions else IncidentStatus.TRIGGERED

    @computed_field  # type: ignore[prop-decorator]
    @property
    def opened_at(self) -> datetime | None:
        """When the incident was opened."""
        return self.transitions[0].at if self.transitions else None


def incident_views(inbox: Inbox, limit: int = 50) -> list[IncidentView]:
    """The newest incidents first, from the store and those the intake opened moments ago."""
    stored = {i.id: i for i in inbox.store.list(limit)}
    with inbox.tx(write=False) as conn:
        recent = conn.execute(
            select(tracked_incidents.c.incident_id)
            .order_by(tracked_incidents.c.opened_at.desc())
            .limit(limit)
        ).all()
    ids = list(dict.fromkeys([*stored, *(r.incident_id for r in recent)]))
    views = _views(inbox, ids, stored)
    views.sort(key=lambda v: v.opened_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return views[:limit]


def incident_view(inbox: Inbox, incident_id: str) -> IncidentView:
    """One incident; NotFoundError if neither the store nor the intake knows it."""
    try:
        stored = {incident_id: inbox.store.get(incident_id)}
    except NotFoundError:
        stored = {}
    views = _views(inbox, [incident_id], stored)
    if not views:
        raise NotFoundError(f"no incident {incident_id!r}")
    return views[0]


def _views(inbox: Inbox, ids: list[str], stored: dict[str, Incident]) -> list[IncidentView]:
    with inbox.tx(write=False) as conn:
        tracked = {
            r.incident_id: r
            for r in conn.execute(
                select(tracked_incidents).where(tracked_incidents.c.incident_id.in_(ids))
            ).all()
        }
        seen: dict[str, list[Any]] = {}
        for r in conn.execute(
            select(occurrences)
            .where(occurrences.c.incident_id.in_(ids))
            .order_by(occurrences.c.received_at)
        ).all():
            seen.setdefault(r.incident_id, []).append(r)
        runs: dict[tuple[str, str], Any] = {
            (r.incident_id, r.kind): r
            for r in conn.execute(select(dispatches).where(dispatches.c.incident_id.in_(ids))).all()
        }
    views = []
    for incident_id in ids:
        incident = stored.get(incident_id) or _not_yet_stored(tracked.get(incident_id), seen)
        if incident is None:
            continue
        views.append(_view(incident, tracked.get(incident_id), seen.get(incident_id, []), runs))
    return views


def _not_yet_stored(row: Any, seen: dict[str, list[Any]]) -> Incident | None:
    """An incident committed by the intake that the dispatcher has not written to the store."""
    if row is None:
        return None
    opener = next((o for o in seen.get(row.incident_id, []) if o.role == "opened"), None)
    if opener is None:
        return None
    alert = Alert.model_validate_json(opener.alert)
    return Incident(
        id=row.incident_id,
        alert=alert,
        severity=Severity.from_labels(alert.labels),
        playbook=row.deployment.split("/", 1)[0],
        transitions=[
            Transition(status=IncidentStatus.TRIGGERED, at=as_utc(row.opened_at) or utcnow())
        ],
    )


def _view(
    incident: Incident, row: Any, seen: list[Any], runs: dict[tuple[str, str], Any]
) -> IncidentView:
    data = incident.model_dump()
    playbook_run = runs.get((incident.id, "playbook"))
    post_run = runs.get((incident.id, "post-incident"))
    if row is not None:
        data.update(
            deployment=row.deployment,
            last_seen_at=as_utc(row.last_seen_at),
            alert_resolved_at=as_utc(row.alert_resolved_at),
            flow_run_state=row.run_state,
            playbook_finished_at=as_utc(row.run_finished_at),
            flow_run_id=incident.flow_run_id or row.flow_run_id,
        )
    if playbook_run is not None and playbook_run.dispatched_at is None:
        data["dispatch_error"] = playbook_run.last_error
    if post_run is not None:
        data["post_incident_flow_run_id"] = post_run.flow_run_id
    data["occurrences"] = [
        OccurrenceView(
            occurrence_key=o.occurrence_key,
            role=o.role,
            source=o.source,
            alert_name=o.alert_name,
            status=o.status,
            received_at=as_utc(o.received_at),
            last_seen_at=as_utc(o.last_seen_at),
            times_seen=o.times_seen,
            resolved_at=as_utc(o.resolved_at),
        )
        for o in seen
    ]
    return IncidentView.model_validate(data)
