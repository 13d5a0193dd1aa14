"""A service whose metrics are named otherwise: the playbook's PromQL comes from its config.

Against the sandbox's Prometheus stand-in (no Debian package needed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from oncall.clients.prometheus import PrometheusClient
from oncall.clients.promql_metrics import MetricQueries, PromQLMetrics
from oncall.playbooks import HighErrorRateConfig
from oncall_sandbox import Sandbox

LABELS = {"namespace": "cronos-ai", "service": "cronos-ai"}


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[PrometheusClient]:
    """The stand-in over CRONOS's `minor` scenario, after a few scrapes."""
    with Sandbox(tmp_path, time_scale=0.02, scenario="minor") as sandbox:
        client = PrometheusClient(sandbox.prometheus_url)
        time.sleep(1.5)
        yield client
        client.close()


def test_the_configured_templates_are_what_is_asked(standin: PrometheusClient) -> None:
    templates = MetricQueries(
        requests='sum(increase(http_requests_total{{{sel},code!="404"}}[{range}]))',
        gauges={"cache_hit_rate": "avg(cache_hit_rate{{{sel}}})"},
    )
    readings = PromQLMetrics(standin, LABELS, scrape_interval_s=0.5, templates=templates)
    sample = readings.error_rate(1.0)
    hit = readings.gauge("cache_hit_rate")
    size = readings.gauge("db_pool_size")
    assert sample.requests > 0 and hit is not None and 0 < hit <= 1 and size is not None
    sel = 'namespace="cronos-ai",service="cronos-ai"'
    assert readings.queries() == [
        f'sum(increase(http_requests_total{{{sel},code!="404"}}[2s]))',
        f'sum(increase(http_requests_total{{{sel},code=~"5.."}}[2s]))',  # the default
        f"avg(cache_hit_rate{{{sel}}})",  # its own query
        f"sum(db_pool_size{{{sel}}})",  # the gauge template
    ]


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("sum(rate(http_requests_total{{{service}}}[{range}]))", "KeyError('service')"),
        ("sum(rate(http_requests_total{sel}[{range}])", "not a query template"),
        ("sum(rate(x{{{sel}}}[{range}]))}", "Single '}'"),
    ],
)
def test_a_broken_template_is_refused_with_the_field_and_the_reason(
    template: str, why: str
) -> None:
    if "{sel}[" in template:
        template = template.replace("{sel}", "{sel")  # an unclosed placeholder
    with pytest.raises(ValidationError) as caught:
        HighErrorRateConfig.model_validate({"prometheus_queries": {"requests": template}})
    text = str(caught.value)
    assert "prometheus_queries.requests" in text and why in text
