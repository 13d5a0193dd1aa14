"""The product's data: alerts as Alertmanager sends them, severities, incidents."""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Alertmanager sends this for an alert that is still firing.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook v4 message, as it arrives on the wire."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(default=ZERO_TIME, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if "alertname" not in labels:
            raise ValueError("labels.alertname is required")
        return labels


class AlertmanagerWebhook(BaseModel):
    """An Alertmanager webhook v4 message: every alert of one group."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert]


class Alert(BaseModel):
    """An alert normalised from any source; identity is fingerprint + starts_at."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    starts_at: datetime
    ends_at: datetime | None = None
    fingerprint: str
    generator_url: str = ""

    @classmethod
    def from_alertmanager(cls, raw: AlertmanagerAlert) -> Alert:
        """Normalise one Alertmanager alert (``endsAt`` of year 1 means still firing)."""
        return cls(
            name=raw.labels["alertname"],
            labels=dict(raw.labels),
            annotations=dict(raw.annotations),
            status=raw.status,
            starts_at=raw.starts_at,
            ends_at=None if raw.ends_at <= ZERO_TIME else raw.ends_at,
            fingerprint=raw.fingerprint,
            generator_url=raw.generator_url,
        )

    @property
    def occurrence_key(self) -> str:
        """Identity of this alert occurrence: Alertmanager re-sends it with the same key."""
        return f"{self.fingerprint}@{self.starts_at.astimezone(UTC).isoformat()}"

    @property
    def service(self) -> str:
        """The service the alert is about, from the usual labels."""
        for key in ("service", "app", "deployment", "job"):
            if value := self.labels.get(key):
                return value
        return "unknown"


class Severity(enum.StrEnum):
    """Incident severity with the CRONOS seed's response and resolution targets."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def response_target(self) -> timedelta:
        """Time within which the incident must be acknowledged."""
        return _TARGETS[self][0]

    @property
    def resolution_target(self) -> timedelta:
        """Time within which the incident must be resolved."""
        return _TARGETS[self][1]

    @property
    def label(self) -> str:
        """The seed's name for the severity."""
        return _TITLES[self]

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Severity:
        """Triage: an explicit ``severity`` label wins; Prometheus' words map onto P1-P4."""
        raw = labels.get("severity", "").strip().lower()
        if raw.upper() in cls.__members__:
            return cls(raw.upper())
        return _WORDS.get(raw, cls.P3)


_TARGETS: dict[Severity, tuple[timedelta, timedelta]] = {
    Severity.P1: (timedelta(minutes=15), timedelta(hours=4)),
    Severity.P2: (timedelta(minutes=30), timedelta(hours=8)),
    Severity.P3: (timedelta(hours=2), timedelta(hours=24)),
    Severity.P4: (timedelta(hours=8), timedelta(hours=72)),
}
_TITLES = {
    Severity.P1: "Critical",
    Severity.P2: "High",
    Severity.P3: "Medium",
    Severity.P4: "Low",
}
_WORDS = {
    "critical": Severity.P1,
    "page": Severity.P1,
    "high": Severity.P2,
    "error": Severity.P2,
    "warning": Severity.P3,
    "medium": Severity.P3,
    "low": Severity.P4,
    "info": Severity.P4,
}


class IncidentStatus(enum.StrEnum):
    """Where an incident stands."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class Transition(BaseModel):
    """One status change of an incident, with its time."""

    status: IncidentStatus
    at: datetime = Field(default_factory=utcnow)
    note: str = ""


class Action(BaseModel):
    """Something the playbook did (or refused to do) to the world."""

    kind: str
    target: str
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)
    dry_run: bool = False


class Approval(BaseModel):
    """A human's decision on a proposed mitigation."""

    approver: str
    decision: Literal["approved", "rejected", "timed_out"]
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)


class Incident(BaseModel):
    """An incident: one alert occurrence worked by one playbook run."""

    id: str = Field(default_factory=lambda: f"inc-{uuid.uuid4().hex[:10]}")
    alert: Alert
    severity: Severity
    playbook: str = ""
    flow_run_id: str | None = None
    acknowledged_by: str | None = Field(
        default=None, description="The human who took the incident (stops escalation timers)."
    )
    transitions: list[Transition] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)

    @staticmethod
    def id_for(alert: Alert) -> str:
        """A stable id for one alert occurrence, so a re-sent alert finds its incident."""
        return "inc-" + hashlib.sha256(alert.occurrence_key.encode()).hexdigest()[:10]

    @property
    def status(self) -> IncidentStatus:
        """The latest transition's status."""
        return self.transitions[-1].status if self.transitions else IncidentStatus.TRIGGERED

    def at(self, status: IncidentStatus) -> datetime | None:
        """When the incident first reached ``status``, if it did."""
        return next((t.at for t in self.transitions if t.status == status), None)

    @property
    def title(self) -> str:
        """A one-line title: severity, alert, service."""
        return f"[{self.severity}] {self.alert.name} on {self.alert.service}"
