"""PagerDuty V3 webhooks: incident.triggered / incident.resolved become alert occurrences."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from oncall.intake.bodies import parse
from oncall.models import MAX_NAME_CHARS, Alert, Name, WireTimestamp

# Everything else (acknowledged, annotated, priority_updated, ...) is accepted and ignored.
ALERT_EVENTS = {"incident.triggered": "firing", "incident.resolved": "resolved"}


class PagerDutyReference(BaseModel):
    """A reference object (service, priority, ...): its id and display summary."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    summary: str = ""


class PagerDutyIncident(BaseModel):
    """The `data` of an incident event: the fields the intake uses."""

    model_config = ConfigDict(extra="ignore")

    id: Name
    title: str = ""
    urgency: str = ""
    created_at: WireTimestamp
    html_url: str = ""
    service: PagerDutyReference | None = None
    priority: PagerDutyReference | None = None


class PagerDutyEvent(BaseModel):
    """One V3 webhook event."""

    model_config = ConfigDict(extra="ignore")

    id: Name = Field(description="Deliveries are deduplicated on it.")
    event_type: str = Field(min_length=1)
    resource_type: str = ""
    occurred_at: WireTimestamp
    data: dict[str, Any]


class PagerDutyWebhook(BaseModel):
    """A V3 webhook body: exactly one event."""

    model_config = ConfigDict(extra="ignore")

    event: PagerDutyEvent


def alerts_of(webhook: PagerDutyWebhook) -> list[Alert]:
    """The alert occurrence an incident event is about; none for other event types."""
    event = webhook.event
    status = ALERT_EVENTS.get(event.event_type)
    if status is None:
        return []
    incident = parse(PagerDutyIncident, event.data, prefix="event.data")
    full_title = incident.title or f"PagerDuty incident {incident.id}"
    # PagerDuty titles run to 1,024 characters; the alert's name is its first 200.
    title = full_title
    if len(title) > MAX_NAME_CHARS:
        title = title[: MAX_NAME_CHARS - 1] + "…"
    labels = {
        "alertname": title,
        "source": "pagerduty",
        "pagerduty_incident": incident.id,
    }
    if incident.service and incident.service.summary:
        labels["service"] = incident.service.summary[:MAX_NAME_CHARS]
    if incident.priority and incident.priority.summary:
        labels["severity"] = incident.priority.summary
    elif incident.urgency:
        labels["severity"] = "critical" if incident.urgency == "high" else "warning"
    return [
        Alert(
            name=title,
            labels=labels,
            annotations={"summary": full_title, "url": incident.html_url},
            status="firing" if status == "firing" else "resolved",
            # created_at is the same on every event of the incident: one occurrence.
            starts_at=incident.created_at,
            ends_at=event.occurred_at if status == "resolved" else None,
            fingerprint=hashlib.sha256(f"pagerduty:{incident.id}".encode()).hexdigest()[:16],
            generator_url=incident.html_url,
        )
    ]
