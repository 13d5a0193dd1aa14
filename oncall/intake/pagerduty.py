"""PagerDuty V3 webhooks: incident.triggered / incident.resolved become alert occurrences."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from oncall.intake.bodies import parse
from oncall.models import Alert

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

    id: str = Field(min_length=1)
    title: str = ""
    urgency: str = ""
    created_at: datetime
    html_url: str = ""
    service: PagerDutyReference | None = None
    priority: PagerDutyReference | None = None


class PagerDutyEvent(BaseModel):
    """One V3 webhook event."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    resource_type: str = ""
    occurred_at: datetime
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
    title = incident.title or f"PagerDuty incident {incident.id}"
    labels = {
        "alertname": title,
        "source": "pagerduty",
        "pagerduty_incident": incident.id,
    }
    if incident.service and incident.service.summary:
        labels["service"] = incident.service.summary
    if incident.priority and incident.priority.summary:
        labels["severity"] = incident.priority.summary
    elif incident.urgency:
        labels["severity"] = "critical" if incident.urgency == "high" else "warning"
    return [
        Alert(
            name=title,
            labels=labels,
            annotations={"summary": title, "url": incident.html_url},
            status="firing" if status == "firing" else "resolved",
            # created_at is the same on every event of the incident: one occurrence.
            starts_at=incident.created_at,
            ends_at=event.occurred_at if status == "resolved" else None,
            fingerprint=hashlib.sha256(f"pagerduty:{incident.id}".encode()).hexdigest()[:16],
            generator_url=incident.html_url,
        )
    ]
