"""The product's data: alerts as Alertmanager sends them, severities, incidents."""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from oncall.subjects import Subject

# Alertmanager sends this for an alert that is still firing.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# Bounds of what an alert may carry: generous next to what Prometheus and Alertmanager
# produce, small enough that no field can break a store column or the memory of a worker.
MAX_NAME_CHARS = 200  # alert names and the service label (indexed columns)
MAX_LABEL_NAME_CHARS = 128
MAX_LABEL_VALUE_CHARS = 1024  # label values: Kubernetes names are at most 253
MAX_TEXT_CHARS = 16_384  # annotations, URLs
MAX_LABELS = 64
MAX_ALERTS = 20_000  # alerts of one message (an Alertmanager group of 10,000 fits twice)
# The labels an alert's service is read from, in order.
SERVICE_LABELS = ("service", "app", "deployment", "job")


def storable(value: str) -> str:
    """Refuse text no store can keep: NUL characters and lone UTF-16 surrogates."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"contains a lone surrogate (\\u{ord(value[exc.start]):04x}), not valid Unicode"
        ) from None
    return value


def utc_timestamp(value: datetime) -> datetime:
    """A timestamp in UTC (UTC assumed without an offset); refused if UTC cannot hold it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC (years 1 to 9999)") from None


def rfc3339_text(value: Any) -> Any:
    """Wire timestamps are RFC 3339 strings: a bare number is refused, not read as epoch."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2025-01-01T12:00:00Z")
    return value


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(storable)
]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_NAME_CHARS), AfterValidator(storable)
]
LabelValue = Annotated[
    str, StringConstraints(max_length=MAX_LABEL_VALUE_CHARS), AfterValidator(storable)
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS), AfterValidator(storable)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Annotations = Annotated[dict[LabelName, Text], Field(max_length=MAX_LABELS)]
Timestamp = Annotated[datetime, AfterValidator(utc_timestamp)]
WireTimestamp = Annotated[datetime, BeforeValidator(rfc3339_text), AfterValidator(utc_timestamp)]


def service_of(labels: dict[str, str]) -> str:
    """The service an alert is about, from the usual labels ("unknown" without one)."""
    for key in SERVICE_LABELS:
        if value := labels.get(key):
            return value
    return "unknown"


def check_alert_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels every alert needs, within the bounds the store indexes."""
    if not labels.get("alertname"):
        raise ValueError("labels.alertname is required")
    if len(labels["alertname"]) > MAX_NAME_CHARS:
        raise ValueError(f"labels.alertname: at most {MAX_NAME_CHARS} characters")
    for key in SERVICE_LABELS:
        if value := labels.get(key):
            if len(value) > MAX_NAME_CHARS:
                raise ValueError(f"labels.{key}: at most {MAX_NAME_CHARS} characters")
            break
    return labels


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook v4 message, as it arrives on the wire."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels = Field(
        description="`alertname` is required; `service` (or app/deployment/job) names the "
        f"service. At most {MAX_LABELS} labels; alertname and service at most "
        f"{MAX_NAME_CHARS} characters, other values {MAX_LABEL_VALUE_CHARS}.",
        json_schema_extra={"required": ["alertname"]},
    )
    annotations: Annotations = Field(default_factory=dict)
    starts_at: WireTimestamp = Field(alias="startsAt")
    ends_at: WireTimestamp = Field(default=ZERO_TIME, alias="endsAt")
    generator_url: Text = Field(default="", alias="generatorURL")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_alert_labels(labels)


class AlertmanagerWebhook(BaseModel):
    """An Alertmanager webhook v4 message: every alert of one group."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: Text = Field(alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: Text
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Annotations = Field(default_factory=dict, alias="commonAnnotations")
    external_url: Text = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert] = Field(
        max_length=MAX_ALERTS,
        description="Every alert of the group. Invalid alerts are refused one by one: the "
        "valid ones are accepted (202) and the refused ones named in the answer.",
    )


class Alert(BaseModel):
    """An alert normalised from any source; identity is fingerprint + starts_at."""

    name: Name
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    starts_at: Timestamp
    ends_at: Timestamp | None = None
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    generator_url: Text = ""

    @model_validator(mode="after")
    def _service_fits(self) -> Alert:
        service = self.service
        if len(service) > MAX_NAME_CHARS:
            raise ValueError(f"service {service[:40]!r}...: at most {MAX_NAME_CHARS} characters")
        return self

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
        return service_of(self.labels)


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


class PagePolicy(enum.StrEnum):
    """When an incident of a severity wakes a person through PagerDuty."""

    IMMEDIATELY = "immediately"  # as soon as it opens
    WHEN_NEEDED = "when_needed"  # only once a person is needed: approval, escalation
    NEVER = "never"  # Slack only


# P1 pages at once; P2 and P3 only when the automation needs a person; P4 stays in Slack.
DEFAULT_PAGE_POLICY: dict[Severity, PagePolicy] = {
    Severity.P1: PagePolicy.IMMEDIATELY,
    Severity.P2: PagePolicy.WHEN_NEEDED,
    Severity.P3: PagePolicy.WHEN_NEEDED,
    Severity.P4: PagePolicy.NEVER,
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


class ActionKind(enum.StrEnum):
    """What a mitigation does to the cluster or a service: the keys of every guard policy."""

    ROLLBACK = "rollback"
    SWITCH = "switch"
    RESTART = "restart"
    SCALE = "scale"
    SET_ENV = "set_env"
    FALLBACK = "fallback"
    CONFIG = "config"
    WARM_CACHE = "warm_cache"


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
    channel: str = Field(
        default="", description="Where it was taken: slack, api, cli, drill or Prefect UI."
    )
    verified: bool = Field(
        default=False, description="True when the intake checked who decided (not typed)."
    )

    @property
    def attribution(self) -> str:
        """Who decided through which channel, as the incident and the postmortem say it."""
        if not self.channel:
            return self.approver
        return f"{self.approver} via {self.channel}{'' if self.verified else ' (unverified)'}"


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
    acknowledged_at: datetime | None = Field(
        default=None, description="When that person took it (the response time's end)."
    )
    transitions: list[Transition] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    subject: Subject | None = Field(
        default=None, description="What the alert is about, resolved against the cluster."
    )

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
        return f"[{self.severity}] {self.alert.name} on {self.service}"

    @property
    def service(self) -> str:
        """The owning service: the catalog's for the subject, else the alert's label."""
        if self.subject is not None and self.subject.catalog_service:
            return self.subject.catalog_service
        return self.alert.service
