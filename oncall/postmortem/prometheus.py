"""Prometheus range queries over the incident window (HTTP API `/api/v1/query_range`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from oncall.errors import PermanentError, TransientError
from oncall.models import Alert
from oncall.postmortem.evidence import LogLine, MetricPoint, MetricSeries

# What `_consecutive` in tasks/verify.py logs for every sample it takes.
_SAMPLE = re.compile(r"^(?P<unit>.+?) (?P<value>-?[0-9.]+(?:e[-+]?[0-9]+)?) \(threshold ")


class PrometheusSettings(BaseSettings):
    """Where Prometheus answers queries (environment prefix ``ONCALL_PROMETHEUS_``)."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_PROMETHEUS_", extra="ignore")

    url: str | None = Field(
        default=None, description="Prometheus base URL; without it the playbook's samples are used."
    )
    step_s: float = Field(default=15.0, gt=0, description="Resolution of range queries (s).")
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one query (s).")


class PrometheusClient:
    """Runs range queries against one Prometheus server."""

    def __init__(self, base_url: str, http: httpx.Client | None = None, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def query_range(
        self, expr: str, start: datetime, end: datetime, step_s: float
    ) -> list[MetricSeries]:
        """Every series of ``expr`` between ``start`` and ``end``."""
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_s:g}",
        }
        try:
            response = self.http.get(f"{self.base_url}/api/v1/query_range", params=params)
        except httpx.TransportError as exc:
            raise TransientError(f"Prometheus unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Prometheus query failed: HTTP {response.status_code}")
        body = response.json() if response.content else {}
        if response.status_code >= 400 or body.get("status") != "success":
            raise PermanentError(
                f"Prometheus refused {expr!r}: {body.get('errorType')}: {body.get('error')}"
            )
        return [
            MetricSeries(
                source="prometheus",
                query=expr,
                labels=dict(item.get("metric", {})),
                points=[
                    MetricPoint(at=datetime.fromtimestamp(float(t), UTC), value=float(v))
                    for t, v in item.get("values", [])
                ],
            )
            for item in body["data"]["result"]
        ]


def alert_expression(alert: Alert) -> str | None:
    """The alerting rule's PromQL, from the alert's generator URL (`g0.expr`)."""
    query = parse_qs(urlsplit(alert.generator_url).query)
    values = query.get("g0.expr") or query.get("expr")
    return values[0] if values else None


def playbook_samples(alert: Alert, logs: list[LogLine]) -> list[MetricSeries]:
    """The alert's value when it fired and the samples the playbook's verification logged."""
    series: list[MetricSeries] = []
    if value := alert.annotations.get("value"):
        series.append(
            MetricSeries(
                source="playbook",
                query=f"{alert.name} value at firing",
                points=[MetricPoint(at=alert.starts_at, value=float(value))],
            )
        )
    by_unit: dict[str, MetricSeries] = {}
    for line in logs:
        match = _SAMPLE.match(line.message)
        if not line.task.startswith("verify_") or match is None:
            continue
        unit = match["unit"]
        found = by_unit.setdefault(
            unit, MetricSeries(source="playbook", query=f"{unit} (verification)")
        )
        found.points.append(MetricPoint(at=line.at, value=float(match["value"])))
    return series + list(by_unit.values())
