"""From a decoded webhook body to the alerts it carries, one alert at a time.

A message is refused whole (4xx) only when its envelope is wrong or none of its alerts is
valid. Otherwise the valid alerts are accepted and each invalid one is named in the
answer and kept as a dead letter: Alertmanager does not retry a 4xx, so refusing a whole
group for one bad alert would lose the good ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from oncall.intake import pagerduty
from oncall.intake.bodies import BodyError, describe, parse
from oncall.intake.generic import GenericAlert, GenericWebhook
from oncall.models import MAX_ALERTS, Alert, AlertmanagerAlert, AlertmanagerWebhook

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Refused:
    """One alert of a message that can never be accepted, and why."""

    index: int
    detail: str
    alert: Any

    def as_json(self) -> dict[str, Any]:
        """How the 202 answer names it."""
        return {"index": self.index, "detail": self.detail}


@dataclass
class Parsed:
    """What a message carries: valid alerts, refused ones, and its delivery id if any."""

    alerts: list[Alert] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    event_id: str | None = None


# Decoded JSON -> what it carries (BodyError when the message as a whole is refused).
Interpret = Callable[[Any], Parsed]


def _each_alert(
    raw_alerts: list[Any], one: Callable[[Any, str], Alert], event_id: str | None = None
) -> Parsed:
    """Every alert validated on its own; refused whole only if none of them is valid."""
    parsed = Parsed(event_id=event_id)
    for index, raw in enumerate(raw_alerts):
        try:
            parsed.alerts.append(one(raw, f"alerts.{index}"))
        except BodyError as exc:
            parsed.refused.append(Refused(index, exc.message, raw))
    if parsed.refused and not parsed.alerts:
        details = "; ".join(r.detail for r in parsed.refused[:5])
        more = len(parsed.refused) - 5
        raise BodyError(
            422, "invalid_schema", details + (f"; and {more} more alerts" if more > 0 else "")
        )
    return parsed


def _alerts_list(doc: Any, envelope: type[BaseModel], stand_in: Any) -> list[Any]:
    """The raw alerts, once the envelope around them is valid (checked with stand-ins)."""
    items = doc.get("alerts") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        parse(envelope, doc)  # the envelope's own error: not an object, alerts missing or empty
        return []
    parse(envelope, {**doc, "alerts": [stand_in] * min(len(items), MAX_ALERTS + 1)})
    return items


def _alertmanager_alert(raw: Any, prefix: str) -> Alert:
    return _normalised(
        lambda: Alert.from_alertmanager(parse(AlertmanagerAlert, raw, prefix)), prefix
    )


def _generic_alert(raw: Any, prefix: str) -> Alert:
    return _normalised(lambda: parse(GenericAlert, raw, prefix).to_alert(), prefix)


def _normalised(build: Callable[[], T], prefix: str = "") -> T:
    try:
        return build()
    except ValidationError as exc:  # the normalised alert's own bounds (service length, ...)
        raise BodyError(422, "invalid_schema", describe(exc, prefix)) from exc


def from_alertmanager(doc: Any) -> Parsed:
    """An Alertmanager webhook v4 message."""
    alerts = _alerts_list(doc, AlertmanagerWebhook, _AM_STAND_IN)
    truncated = doc.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        log.warning("Alertmanager truncated %d alerts of %s", truncated, doc.get("groupKey"))
    return _each_alert(alerts, _alertmanager_alert)


def from_generic(doc: Any) -> Parsed:
    """The generic schema: one or more alerts."""
    return _each_alert(_alerts_list(doc, GenericWebhook, _GENERIC_STAND_IN), _generic_alert)


def from_pagerduty(doc: Any) -> Parsed:
    """A PagerDuty V3 webhook: one event, deduplicated on its id."""
    webhook = parse(pagerduty.PagerDutyWebhook, doc)
    alerts = _normalised(lambda: pagerduty.alerts_of(webhook), "event.data")
    return Parsed(alerts=alerts, event_id=webhook.event.id)


# Valid alerts standing in while an envelope is checked without its real alerts.
_AM_STAND_IN = {
    "status": "firing",
    "labels": {"alertname": "x"},
    "startsAt": "2025-01-01T00:00:00Z",
    "fingerprint": "0000000000000000",
}
_GENERIC_STAND_IN = {"name": "x", "starts_at": "2025-01-01T00:00:00Z"}
