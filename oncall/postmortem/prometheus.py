"""Prometheus range queries over the incident window (HTTP API `/api/v1/query_range`)."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from oncall.clients.prometheus import PrometheusClient
from oncall.models import Alert
from oncall.postmortem.evidence import LogLine, MetricPoint, MetricSeries

# What `_consecutive` in tasks/verify.py logs for every sample it takes.
_SAMPLE = re.compile(r"^(?P<unit>.+?) (?P<value>-?[0-9.]+(?:e[-+]?[0-9]+)?) \(threshold ")


def range_series(
    client: PrometheusClient, expr: str, start: datetime, end: datetime, step_s: float
) -> list[MetricSeries]:
    """Every series of ``expr`` over the incident window, as the postmortem keeps them."""
    return [
        MetricSeries(
            source="prometheus",
            query=expr,
            labels=series.labels,
            points=[MetricPoint(at=at, value=value) for at, value in series.points],
        )
        for series in client.query_range(expr, start, end, step_s)
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
