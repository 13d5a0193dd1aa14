"""A playbook's readings asked of Debian's real Prometheus, scraping the sandbox's service.

Prometheus scrapes the CRONOS Service with the target labels a ServiceMonitor gives it
(``namespace``, ``service``); the readings select those series and agree with what the
service itself counts. No data is no data (never a healthy zero), a bad query is permanent,
an unreachable Prometheus transient.
"""

from __future__ import annotations

import pytest

from oncall.clients.metrics import ServiceMetrics
from oncall.clients.prometheus import PrometheusClient, PrometheusSettings
from oncall.errors import PermanentError, TransientError
from tests.conftest import free_port, requires
from tests.metrics.conftest import Scraped
from tests.prometheus_daemon import PROMETHEUS

pytestmark = requires(PROMETHEUS is not None, "prometheus")


def test_the_error_rate_from_prometheus_is_the_one_the_service_counts(scraped: Scraped) -> None:
    readings = scraped.readings()
    from_prometheus = readings.error_rate(2.0)
    assert from_prometheus.requests > 500
    assert 0.01 <= from_prometheus.rate <= 0.035  # the minor scenario's share of 5xx
    direct = ServiceMetrics(scraped.sandbox.service_url("cronos-ai", "cronos-ai"))
    assert abs(direct.error_rate(2.0).rate - from_prometheus.rate) < 0.015
    # What was asked is kept, to be shown as evidence.
    asked = [r.query for r in readings.readings]
    assert asked == [
        'sum(increase(http_requests_total{namespace="cronos-ai",service="cronos-ai"}[2s]))',
        'sum(increase(http_requests_total{namespace="cronos-ai",service="cronos-ai",'
        'code=~"5.."}[2s]))',
    ]
    assert readings.readings[0].value == from_prometheus.requests


def test_latency_and_gauges_read_the_services_series(scraped: Scraped) -> None:
    readings = scraped.readings()
    p95 = readings.latency_quantile("http_request_duration_seconds", 0.95, 2.0)
    assert p95 is not None and 0 < p95 < 5
    size = readings.gauge("db_pool_size")
    direct = ServiceMetrics(scraped.sandbox.service_url("cronos-ai", "cronos-ai"))
    assert size == direct.gauge("db_pool_size")  # a constant: the same on both sides
    hit = readings.gauge("cache_hit_rate")
    assert hit is not None and 0 < hit <= 1


def test_no_data_is_none_not_a_healthy_zero(scraped: Scraped) -> None:
    elsewhere = scraped.readings({"namespace": "payments", "service": "ledger"})
    sample = elsewhere.error_rate(0.5)
    assert sample.requests == 0  # no traffic seen: the caller must not call it healthy
    assert elsewhere.latency_quantile("http_request_duration_seconds", 0.95, 0.5) is None
    assert elsewhere.gauge("db_pool_size") is None
    assert [r.value for r in elsewhere.readings] == [None, None, None, None]


def test_a_query_that_returns_several_series_is_refused(scraped: Scraped) -> None:
    with pytest.raises(PermanentError, match="aggregate it to one"):
        scraped.client.value('http_requests_total{service="cronos-ai"}')
    with pytest.raises(PermanentError, match="bad_data"):
        scraped.client.value("sum(rate(http_requests_total[1m])")


def test_an_unreachable_prometheus_is_transient() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(TransientError, match="unreachable"):
        client.value("up")


def test_settings_build_the_client_with_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PrometheusClient.from_settings(PrometheusSettings(url=None)) is None
    monkeypatch.setenv("ONCALL_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
    monkeypatch.setenv("ONCALL_PROMETHEUS_BEARER_TOKEN", "s3cret")
    client = PrometheusClient.from_settings(PrometheusSettings())
    assert client is not None
    assert client.base_url == "http://prometheus.monitoring:9090"
    assert client.http.headers["Authorization"] == "Bearer s3cret"
