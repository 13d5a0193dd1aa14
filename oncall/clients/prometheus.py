"""The Prometheus HTTP API: instant and range queries (`/api/v1/query`, `/api/v1/query_range`).

Plain httpx: the API is two GET endpoints with a JSON envelope, and the official Python
client (`prometheus-client`) only exposes metrics, it does not query them. Errors are mapped
as everywhere in the clients: unreachable, 429 and 5xx are transient (a task retries them);
a 4xx or an ``"status": "error"`` envelope (a bad expression) is permanent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from oncall.errors import PermanentError, TransientError


class PrometheusSettings(BaseSettings):
    """Where Prometheus answers queries (environment prefix ``ONCALL_PROMETHEUS_``)."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_PROMETHEUS_", extra="ignore")

    url: str | None = Field(
        default=None,
        description="Prometheus base URL; without it, metrics come from the services' scrapes.",
    )
    bearer_token: SecretStr | None = Field(default=None, description="Bearer token, if any.")
    username: str | None = Field(default=None, description="Basic auth user, if any.")
    password: SecretStr | None = Field(default=None, description="Basic auth password.")
    scrape_interval_s: float = Field(
        default=15.0, gt=0, description="Its scrape interval: a rate's range spans two of them."
    )
    step_s: float = Field(default=15.0, gt=0, description="Resolution of range queries (s).")
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one query (s).")


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or the scalar answer) at one time."""

    labels: dict[str, str]
    value: float
    at: datetime


@dataclass
class Series:
    """One series of a range query."""

    labels: dict[str, str]
    points: list[tuple[datetime, float]] = field(default_factory=list)


class PrometheusClient:
    """Runs PromQL against one Prometheus server."""

    def __init__(
        self,
        base_url: str,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.http = httpx.Client(
            timeout=timeout_s, headers=headers, auth=basic_auth, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: PrometheusSettings) -> PrometheusClient | None:
        """The configured Prometheus, or None when ``ONCALL_PROMETHEUS_URL`` is unset."""
        if not settings.url:
            return None
        basic = (
            (settings.username, settings.password.get_secret_value() if settings.password else "")
            if settings.username
            else None
        )
        token = settings.bearer_token.get_secret_value() if settings.bearer_token else None
        return cls(settings.url, bearer_token=token, basic_auth=basic, timeout_s=settings.timeout_s)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        """The instant vector (or scalar) of ``expr`` now, or at ``at``."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._get("query", params, expr)
        kind, result = data.get("resultType"), data.get("result") or []
        if kind in ("scalar", "string"):
            t, v = result
            return [Sample({}, float(v), _time(t))]
        if kind != "vector":
            raise PermanentError(f"Prometheus answered a {kind} to the instant query {expr!r}")
        return [
            Sample(dict(item.get("metric", {})), float(item["value"][1]), _time(item["value"][0]))
            for item in result
        ]

    def value(self, expr: str) -> float | None:
        """The one number ``expr`` evaluates to now; None when it returns no data (or NaN).

        More than one series is the query's mistake (a missing ``sum``), not a value to pick.
        """
        samples = self.query(expr)
        if not samples:
            return None
        if len(samples) > 1:
            labels = ", ".join(str(s.labels) for s in samples[:3])
            raise PermanentError(
                f"{expr!r} returned {len(samples)} series ({labels}, ...): aggregate it to one"
            )
        found = samples[0].value
        return None if math.isnan(found) else found

    def query_range(self, expr: str, start: datetime, end: datetime, step_s: float) -> list[Series]:
        """Every series of ``expr`` between ``start`` and ``end``, one point per ``step_s``."""
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_s:g}",
        }
        data = self._get("query_range", params, expr)
        if data.get("resultType") != "matrix":
            raise PermanentError(f"Prometheus answered a {data.get('resultType')} to {expr!r}")
        return [
            Series(
                labels=dict(item.get("metric", {})),
                points=[(_time(t), float(v)) for t, v in item.get("values", [])],
            )
            for item in data["result"]
        ]

    def _get(self, endpoint: str, params: dict[str, str], expr: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/{endpoint}"
        try:
            response = self.http.get(url, params=params)
        except httpx.TransportError as exc:
            raise TransientError(f"Prometheus unreachable at {self.base_url}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Prometheus query failed: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code in (401, 403):
            raise PermanentError(
                f"Prometheus refused the credentials (HTTP {response.status_code})"
            )
        if response.status_code >= 400 or body.get("status") != "success":
            raise PermanentError(
                f"Prometheus refused {expr!r}: {body.get('errorType')}: {body.get('error')}"
            )
        data: dict[str, Any] = body["data"]
        return data


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)
