"""Verification judged as an analysis: no data is inconclusive, never "verified".

Against Debian's Prometheus scraping the sandbox's CRONOS service (`minor`: about 2 % 5xx),
and against a Prometheus that is not there.
"""

from __future__ import annotations

import time

from oncall.clients.prometheus import PrometheusClient
from oncall.clients.promql_metrics import PromQLMetrics
from oncall.observations import VerifyAnalysis
from tasks.verify import verify_error_rate, verify_latency
from tests.conftest import free_port, requires
from tests.metrics.conftest import Scraped
from tests.prometheus_daemon import PROMETHEUS

pytestmark = requires(PROMETHEUS is not None, "prometheus")
P95 = "http_request_duration_seconds"


def test_healthy_measurements_in_a_row_verify_and_are_kept(scraped: Scraped) -> None:
    readings = scraped.readings()
    found = verify_error_rate(readings, 0.05, 3, 1.0, 60, analysis=VerifyAnalysis())
    assert found.passed and not found.inconclusive
    assert [m.verdict for m in found.measurements] == ["healthy"] * 3
    assert all(0.0 < (m.value or 0) < 0.05 for m in found.measurements)
    assert found.samples == [round(m.value or 0, 4) for m in found.measurements]
    assert any('code=~"5.."' in q for q in found.queries)  # the PromQL it verified with


def test_no_data_is_inconclusive_and_not_verified(scraped: Scraped) -> None:
    elsewhere = scraped.readings({"namespace": "payments", "service": "ledger"})
    analysis = VerifyAnalysis(inconclusive_limit=2)
    found = verify_error_rate(elsewhere, 0.05, 3, 0.2, 60, analysis=analysis)
    assert not found.passed and found.inconclusive
    assert [m.verdict for m in found.measurements] == ["inconclusive"] * 3
    assert "no data in 3 measurements" in found.detail
    latency = verify_latency(elsewhere, P95, 0.95, 1.0, 3, 0.2, 60, analysis=analysis)
    assert not latency.passed and latency.inconclusive


def test_unhealthy_measurements_past_the_failure_limit_end_it(scraped: Scraped) -> None:
    # 2 % of 5xx against a threshold of 0.1 %: every measurement is unhealthy.
    analysis = VerifyAnalysis(failure_limit=1)
    found = verify_error_rate(scraped.readings(), 0.001, 3, 1.0, 120, analysis=analysis)
    assert not found.passed and not found.inconclusive
    assert [m.verdict for m in found.measurements] == ["unhealthy", "unhealthy"]
    assert "(1 allowed)" in found.detail


def test_the_initial_delay_comes_before_the_first_measurement(scraped: Scraped) -> None:
    started = time.monotonic()
    found = verify_error_rate(
        scraped.readings(), 0.05, 1, 0.5, 60, analysis=VerifyAnalysis(initial_delay_s=2)
    )
    assert found.passed
    assert time.monotonic() - started >= 2.5  # the delay, then one 0.5 s window


def test_a_prometheus_that_is_down_ends_it_unverified() -> None:
    gone = PromQLMetrics(PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=1), {})
    analysis = VerifyAnalysis(consecutive_error_limit=2)
    found = verify_error_rate(gone, 0.05, 3, 0.1, 60, analysis=analysis)
    assert not found.passed
    assert [m.verdict for m in found.measurements] == ["error"] * 3
    assert "3 measurements in a row failed" in found.detail
    assert "unreachable" in found.measurements[0].detail
