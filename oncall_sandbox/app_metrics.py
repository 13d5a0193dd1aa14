"""Gauges an app computes at scrape time: DB pool, CPU, cache hit rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from oncall_sandbox import cronos

if TYPE_CHECKING:
    from oncall_sandbox.services import SimulatedService


class AppCollector(Collector):
    """Per-pod gauges of the app behind a Service, read from the live simulation."""

    def __init__(self, service: SimulatedService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges (only for apps that have them)."""
        service = self._service
        if service.app != "cronos-ai":
            return
        db = service.world.db
        in_use = GaugeMetricFamily(
            "db_pool_connections_in_use", "DB connections checked out.", labels=["pod"]
        )
        size = GaugeMetricFamily("db_pool_size", "DB connection pool size.", labels=["pod"])
        cpu = GaugeMetricFamily(
            "cpu_utilization_ratio", "CPU used relative to the container limit.", labels=["pod"]
        )
        for backend in service.backends():
            wanted, pool, _ = db.pool(backend, service.load_per_pod)
            in_use.add_metric([backend.pod], float(min(round(wanted), pool)))
            size.add_metric([backend.pod], float(pool))
            cpu.add_metric([backend.pod], min(cronos.utilization(service.load_per_pod), 1.0))
        yield in_use
        yield size
        yield cpu
        yield GaugeMetricFamily(
            "cache_hit_rate", "Share of cache lookups that hit.", value=db.hit_rate()
        )
