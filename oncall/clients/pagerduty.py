"""The PagerDuty client: Events API v2 out (trigger, acknowledge, resolve).

Per PROTOCOLS.md "PagerDuty": 202 is accepted, 400 is a bad event (never retried), 429 and
5xx are retried with backoff. What an incoming V3 webhook means for our incident is the
intake's (``oncall.intake.pagerduty_events``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from oncall.errors import PermanentError, TransientError
from oncall.models import Severity

log = logging.getLogger("oncall.pagerduty")

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
EventAction = Literal["trigger", "acknowledge", "resolve"]
# PagerDuty's four severities, from the seed's P1-P4.
SEVERITIES: dict[Severity, str] = {
    Severity.P1: "critical",
    Severity.P2: "error",
    Severity.P3: "warning",
    Severity.P4: "info",
}


class PagerDutySettings(BaseSettings):
    """How the product reaches PagerDuty (environment prefix ``ONCALL_PAGERDUTY_``).

    The V3 webhook secret is the intake's (``ONCALL_INTAKE_PAGERDUTY_SECRET``).
    """

    model_config = SettingsConfigDict(env_prefix="ONCALL_PAGERDUTY_", extra="ignore")

    routing_key: SecretStr | None = Field(
        default=None,
        description="Events API v2 integration (routing) key; without it events go to the log.",
    )
    events_url: str = Field(
        default=EVENTS_URL, description="Events API v2 enqueue URL; tests point it at a fake."
    )
    timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one Events API call.")
    attempts: int = Field(
        default=3, ge=1, description="Attempts per event while PagerDuty answers 429 or 5xx."
    )


class PagerDutyUnavailable(TransientError):
    """PagerDuty answered 429/5xx or could not be reached; ``retry_after`` if it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PagerDutyRefused(PermanentError):
    """PagerDuty refused the event (HTTP 400 or another 4xx): retrying will not help."""


class PagerDutyClient:
    """Sends Events API v2 events; the incident's key is the ``dedup_key``."""

    def __init__(
        self,
        routing_key: str,
        events_url: str = EVENTS_URL,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.routing_key, self.events_url = routing_key, events_url
        self.attempts, self.backoff_s, self.max_wait_s = attempts, backoff_s, max_wait_s
        self.http = httpx.Client(timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, settings: PagerDutySettings) -> PagerDutyClient | None:
        """A client as the settings say; None without a routing key."""
        if settings.routing_key is None or not settings.routing_key.get_secret_value():
            return None
        return cls(
            settings.routing_key.get_secret_value(),
            settings.events_url,
            settings.timeout_s,
            settings.attempts,
        )

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def trigger(
        self,
        dedup_key: str,
        summary: str,
        source: str,
        severity: str,
        *,
        timestamp: str | None = None,
        component: str | None = None,
        group: str | None = None,
        event_class: str | None = None,
        custom_details: dict[str, Any] | None = None,
        links: list[dict[str, str]] | None = None,
        routing_key: str | None = None,
    ) -> str:
        """Open (or add to) the PagerDuty incident for ``dedup_key``; returns the key."""
        payload: dict[str, Any] = {
            "summary": summary[:1024],
            "source": source,
            "severity": severity,
            "timestamp": timestamp,
            "component": component,
            "group": group,
            "class": event_class,
            "custom_details": custom_details,
        }
        event: dict[str, Any] = {
            "payload": {k: v for k, v in payload.items() if v is not None},
        }
        if links:
            event["links"] = links
        return self.send("trigger", dedup_key, event, routing_key)

    def acknowledge(self, dedup_key: str, routing_key: str | None = None) -> str:
        """Acknowledge the PagerDuty incident of ``dedup_key``."""
        return self.send("acknowledge", dedup_key, routing_key=routing_key)

    def resolve(self, dedup_key: str, routing_key: str | None = None) -> str:
        """Resolve the PagerDuty incident of ``dedup_key``."""
        return self.send("resolve", dedup_key, routing_key=routing_key)

    def send(
        self,
        action: EventAction,
        dedup_key: str,
        extra: dict[str, Any] | None = None,
        routing_key: str | None = None,
    ) -> str:
        """Enqueue one event (to ``routing_key``'s service, default the configured one),
        retrying 429/5xx with exponential backoff."""
        body = {
            "routing_key": routing_key or self.routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
            **(extra or {}),
        }
        retrying = Retrying(
            retry=retry_if_exception_type(PagerDutyUnavailable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            reraise=True,
        )
        answer: str = retrying(self._post, action, dedup_key, body)
        return answer

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff, or PagerDuty's ``Retry-After`` when longer; capped."""
        backoff = min(self.backoff_s * 2 ** (state.attempt_number - 1), 8 * self.backoff_s)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None) or 0.0
        return float(min(max(backoff, hinted), self.max_wait_s))

    def _post(self, action: str, dedup_key: str, body: dict[str, Any]) -> str:
        what = f"PagerDuty {action} {dedup_key}"
        try:
            response = self.http.post(self.events_url, json=body)
        except httpx.TransportError as exc:
            raise PagerDutyUnavailable(f"{what}: unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            log.warning("%s: HTTP %d, retrying", what, response.status_code)
            raise PagerDutyUnavailable(
                f"{what}: HTTP {response.status_code}",
                _seconds(response.headers.get("retry-after")),
            )
        if response.status_code >= 400:
            raise PagerDutyRefused(
                f"{what}: refused (HTTP {response.status_code}): {_why(response)}"
            )
        try:
            key = response.json().get("dedup_key") or dedup_key
        except ValueError:
            key = dedup_key
        return str(key)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _why(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:300]
    errors = doc.get("errors") if isinstance(doc, dict) else None
    message = doc.get("message", "") if isinstance(doc, dict) else ""
    return f"{message} {'; '.join(map(str, errors or []))}".strip() or response.text[:300]
