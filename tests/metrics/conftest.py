"""A real Prometheus scraping the sandbox's CRONOS service, for the metrics tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest

from oncall.clients.prometheus import PrometheusClient
from oncall.clients.promql_metrics import PromQLMetrics
from oncall_sandbox import Sandbox
from tests.prometheus_daemon import prometheus

SCRAPE_S = 0.5
LABELS = {"namespace": "cronos-ai", "service": "cronos-ai"}


def _config(target: str) -> str:
    return f"""
global:
  scrape_interval: {int(SCRAPE_S * 1000)}ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: cronos-ai
    static_configs:
      - targets: ["{target}"]
        labels: {{namespace: cronos-ai, service: cronos-ai}}
"""


@dataclass
class Scraped:
    """The sandbox's CRONOS service, scraped by a real Prometheus."""

    sandbox: Sandbox
    client: PrometheusClient

    def readings(self, labels: dict[str, str] = LABELS) -> PromQLMetrics:
        """Readings of the series ``labels`` select."""
        return PromQLMetrics(self.client, labels, scrape_interval_s=SCRAPE_S)


@pytest.fixture(scope="module")
def _scraped_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """CRONOS's `minor` scenario under a Prometheus with a few scrapes, for a whole module:
    the tests only read it."""
    home = tmp_path_factory.mktemp("scraped")
    with Sandbox(home / "sandbox", time_scale=0.02, scenario="minor") as sandbox:
        sandbox.inject_fault()
        target = urlparse(sandbox.service_url("cronos-ai", "cronos-ai")).netloc
        with prometheus(_config(target), home / "prometheus") as url:
            client = PrometheusClient(url)
            deadline = time.monotonic() + 30
            query = 'count_over_time(http_requests_total{service="cronos-ai"}[10s])'
            while not any(s.value >= 4 for s in client.query(query)):
                assert time.monotonic() < deadline, "Prometheus did not scrape the service"
                time.sleep(0.25)
            yield Scraped(sandbox, client)
            client.close()


@pytest.fixture
def scraped(_scraped_module: Scraped) -> Scraped:
    """The module's scraped service with its fault injected afresh: the `minor` scenario's
    errors (about 2 % 5xx) last 18 s from here."""
    _scraped_module.sandbox.inject_fault()
    return _scraped_module


@pytest.fixture(autouse=True)
def _prefect_server(prefect_api: str) -> str:
    """The tasks under test run as Prefect task runs: they need the test's server."""
    return prefect_api
