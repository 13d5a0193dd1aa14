"""The sandbox's Prometheus stand-in answers the playbooks' queries as Debian's Prometheus does.

Both scrape the same CRONOS service (the `minor` scenario) on the same interval; each query
the playbooks ask (`PromQLMetrics`) and the CRONOS error-ratio rule's shape is evaluated by
both at the same instant, and the answers agree within 5 %.
"""

from __future__ import annotations

import time

import pytest

from oncall.clients.prometheus import PrometheusClient
from oncall.errors import PermanentError
from tests.conftest import requires
from tests.metrics.conftest import Scraped
from tests.prometheus_daemon import PROMETHEUS

pytestmark = requires(PROMETHEUS is not None, "prometheus")

SEL = '{namespace="cronos-ai",service="cronos-ai"}'
ERRORS = '{namespace="cronos-ai",service="cronos-ai",code=~"5.."}'
QUERIES = [
    f"sum(increase(http_requests_total{SEL}[10s]))",
    f"sum(increase(http_requests_total{ERRORS}[10s]))",
    f"sum(rate(http_requests_total{ERRORS}[10s])) / sum(rate(http_requests_total{SEL}[10s]))",
    f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{SEL}[10s])))",
    f"histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{SEL}[10s])))",
    f"sum(db_pool_size{SEL})",
    f"sum(db_pool_connections_in_use{SEL})",
    f"sum(cache_hit_rate{SEL})",
    f"avg(cpu_utilization_ratio{SEL})",
    f"max(db_pool_connections_in_use{SEL}) / max(db_pool_size{SEL})",
    f"sum by (code) (increase(http_requests_total{SEL}[10s]))",
]


def test_every_playbook_query_agrees_within_5_percent(scraped: Scraped) -> None:
    standin = PrometheusClient(scraped.sandbox.prometheus_url)
    time.sleep(12)  # both hold more than one range of samples
    at = scraped.client.query("time()")[0].at  # one instant for both
    for query in QUERIES:
        real = {tuple(sorted(s.labels.items())): s.value for s in scraped.client.query(query, at)}
        ours = {tuple(sorted(s.labels.items())): s.value for s in standin.query(query, at)}
        assert real, f"Prometheus has no data for {query}"
        assert set(ours) == set(real), (query, ours, real)
        # Counts of a few requests (one status code's 503s) differ by the one or two that
        # fell between the two servers' scrape instants at the range's edges: 5 %, or two
        # requests, whichever is more; everything else within 5 %.
        floor = 2.0 if "increase(" in query else 1e-3
        for labels, value in real.items():
            assert ours[labels] == pytest.approx(value, rel=0.05, abs=floor), (query, labels)


def test_a_query_outside_the_supported_part_is_refused_not_guessed(scraped: Scraped) -> None:
    standin = PrometheusClient(scraped.sandbox.prometheus_url)
    with pytest.raises(PermanentError, match="bad_data"):
        standin.value(f"quantile_over_time(0.9, http_requests_total{SEL}[1m])")
    with pytest.raises(PermanentError, match="bad_data"):
        standin.value("sum(rate(http_requests_total[1m])")
