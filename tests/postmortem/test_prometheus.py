"""The Prometheus range-query client against an in-memory Prometheus HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from oncall.clients.prometheus import PrometheusClient
from oncall.errors import PermanentError, TransientError
from oncall.models import Alert
from oncall.postmortem.prometheus import alert_expression, range_series

START = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
EXPR = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'


def _prometheus(request: httpx.Request) -> httpx.Response:
    assert request.url.path == "/api/v1/query_range"
    params = request.url.params
    if params["query"] == "bad(":
        return httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
        )
    if params["query"] == "down":
        return httpx.Response(503)
    start, step = float(params["start"]), float(params["step"])
    values = [[start + i * step, str(v)] for i, v in enumerate([0.01, 0.27, 0.31, 0.002])]
    body = {"resultType": "matrix", "result": [{"metric": {"job": "api"}, "values": values}]}
    return httpx.Response(200, json={"status": "success", "data": body})


def test_range_query_returns_the_series_with_their_times() -> None:
    client = PrometheusClient("http://prom:9090", transport=httpx.MockTransport(_prometheus))
    (series,) = range_series(client, EXPR, START, START + timedelta(minutes=1), 15)
    assert series.source == "prometheus" and series.labels == {"job": "api"}
    assert [p.value for p in series.points] == [0.01, 0.27, 0.31, 0.002]
    assert series.points[1].at == START + timedelta(seconds=15)


def test_errors_carry_the_retry_decision() -> None:
    client = PrometheusClient("http://prom:9090", transport=httpx.MockTransport(_prometheus))
    with pytest.raises(PermanentError, match="parse error"):
        client.query_range("bad(", START, START, 15)
    with pytest.raises(TransientError):
        client.query_range("down", START, START, 15)


def test_the_alert_expression_comes_from_the_generator_url() -> None:
    alert = Alert(
        name="HighApiErrorRate",
        starts_at=START,
        fingerprint="0123456789abcdef",
        generator_url=str(
            httpx.URL("http://prom:9090/graph", params={"g0.expr": EXPR, "g0.tab": "1"})
        ),
    )
    assert alert_expression(alert) == EXPR
