"""A stand-in for a Prometheus alerting rule, for drills: evaluate, hold `for`, fire.

It sends what Alertmanager would: a webhook v4 message, with the label-set fingerprint
Alertmanager computes (FNV-1a 64 over sorted label names and values).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from oncall.clients.metrics import ServiceMetrics
from oncall.models import ZERO_TIME, Alert, AlertmanagerWebhook

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = b"\xff"


def label_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as 16 hex digits."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for byte in name.encode() + _SEPARATOR + labels[name].encode() + _SEPARATOR:
            digest ^= byte
            digest = (digest * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


@dataclass
class Rule:
    """`measure() <fires> threshold for for_s seconds`, evaluated every ``interval_s`` seconds.

    ``measure`` takes its own sample window (a scrape pair, a probe); None means no data.
    """

    name: str
    fires: Callable[[float], bool]
    for_s: float
    interval_s: float
    measure: Callable[[], float | None] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def wait_until_firing(
        self, timeout_s: float, on_sample: Callable[[float | None, float], None] | None = None
    ) -> AlertmanagerWebhook:
        """Evaluate until the condition has held for ``for_s``; return the webhook message."""
        if self.measure is None:
            raise ValueError(f"rule {self.name} has nothing to measure")
        deadline = time.monotonic() + timeout_s
        pending_since: float | None = None
        active_at: datetime | None = None
        while time.monotonic() < deadline:
            started = time.monotonic()
            value = self.measure()
            now = time.monotonic()
            if value is not None and self.fires(value):
                if pending_since is None:
                    pending_since, active_at = now, datetime.now(UTC)
            else:
                pending_since = active_at = None
            held = now - pending_since if pending_since is not None else 0.0
            if on_sample:
                on_sample(value, held)
            if pending_since is not None and active_at and held >= self.for_s:
                return self.webhook(active_at, value or 0.0)
            time.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))
        raise TimeoutError(f"{self.name} did not fire within {timeout_s:.0f}s")

    def webhook(self, starts_at: datetime, value: float) -> AlertmanagerWebhook:
        """The Alertmanager webhook v4 message announcing this alert."""
        labels = {"alertname": self.name, **self.labels}
        annotations = {**self.annotations, "value": f"{value:.4f}"}
        raw: dict[str, Any] = {
            "version": "4",
            "groupKey": '{}:{alertname="' + self.name + '"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "oncall",
            "groupLabels": {"alertname": self.name},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": starts_at.isoformat(),
                    "endsAt": ZERO_TIME.isoformat(),
                    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=api_5xx_ratio",
                    "fingerprint": label_fingerprint(labels),
                }
            ],
        }
        return AlertmanagerWebhook.model_validate(raw)


def ErrorRateRule(
    name: str,
    threshold: float,
    for_s: float,
    interval_s: float,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    metrics: ServiceMetrics | None = None,
) -> Rule:
    """`5xx share > threshold for for_s`, measured from two scrapes of ``metrics``."""
    return Rule(
        name=name,
        fires=lambda value: value > threshold,
        for_s=for_s,
        interval_s=interval_s,
        measure=(lambda: metrics.error_rate(interval_s).rate) if metrics else None,
        labels=labels or {},
        annotations=annotations or {},
    )


def alerts_of(message: AlertmanagerWebhook) -> list[Alert]:
    """Normalise every alert of a webhook message."""
    return [Alert.from_alertmanager(a) for a in message.alerts]
