"""The generic alert schema, for any source that is neither Alertmanager nor PagerDuty."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oncall.alerting import label_fingerprint
from oncall.models import (
    MAX_ALERTS,
    Alert,
    Annotations,
    Labels,
    Name,
    Text,
    WireTimestamp,
    check_alert_labels,
)


class GenericAlert(BaseModel):
    """One alert. Re-send it with the same labels and `starts_at` and it is deduplicated."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "HighApiErrorRate",
                    "status": "firing",
                    "labels": {"service": "gremlinsai-backend", "severity": "critical"},
                    "annotations": {"summary": "API 5xx error rate above 5%"},
                    "starts_at": "2025-01-01T12:00:00Z",
                }
            ]
        },
    )

    name: Name = Field(description="Alert name; the router matches it as alertname.")
    status: Literal["firing", "resolved"] = Field(
        default="firing", description="`resolved` closes the occurrence started at `starts_at`."
    )
    labels: Labels = Field(
        default_factory=dict,
        description="Routing and triage labels: `service` (or app/deployment/job), `severity`.",
    )
    annotations: Annotations = Field(default_factory=dict, description="Free-form text.")
    starts_at: WireTimestamp = Field(
        description="When the condition began (RFC 3339 string; UTC if no offset). Part of "
        "identity."
    )
    ends_at: WireTimestamp | None = Field(
        default=None, description="When it ended, if resolved (not before `starts_at`)."
    )
    fingerprint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="Stable id of the alert; default: Alertmanager's fingerprint of the labels "
        "(alertname included).",
    )
    source_url: Text = Field(default="", description="Link back to the alert's origin.")

    @field_validator("labels")
    @classmethod
    def _bounded(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_alert_labels({"alertname": "x", **labels})  # the name is its own field

    @model_validator(mode="after")
    def _ends_after_start(self) -> GenericAlert:
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self

    def to_alert(self) -> Alert:
        """The normalised alert."""
        labels = {**self.labels, "alertname": self.name}
        return Alert(
            name=self.name,
            labels=labels,
            annotations=dict(self.annotations),
            status=self.status,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            fingerprint=self.fingerprint or label_fingerprint(labels),
            generator_url=self.source_url,
        )


class GenericWebhook(BaseModel):
    """`POST /v1/alerts/generic`: one or more alerts."""

    model_config = ConfigDict(extra="forbid")

    alerts: list[GenericAlert] = Field(
        min_length=1,
        max_length=MAX_ALERTS,
        description="Invalid alerts are refused one by one: the valid ones are accepted (202) "
        "and the refused ones named in the answer.",
    )
