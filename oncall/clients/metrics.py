"""Reads a service's request metrics the way Prometheus would: counters between two scrapes."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from oncall.clients.service_urls import resolve
from oncall.errors import TransientError
from oncall.observations import ErrorRateSample

REQUESTS_METRIC = "http_requests_total"


class ServiceMetrics:
    """Scrapes one service's Prometheus `/metrics` endpoint."""

    def __init__(self, base_url: str, http: httpx.Client | None = None, timeout_s: float = 5.0):
        self.url = resolve(base_url).rstrip("/") + "/metrics"
        self.http = http or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.http.close()

    def queries(self) -> list[str]:
        """What is read: the service's own scrapes (no PromQL)."""
        return [f"scrapes of {self.url}"]

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        """Every sample of one scrape as (name, labels, value)."""
        try:
            response = self.http.get(self.url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise TransientError(f"scrape of {self.url} failed: {exc}") from exc
        return [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        ]

    def gauge(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The sum of a gauge's series matching ``labels`` (None when none is exported)."""
        want = labels or {}
        values = [
            v
            for n, got, v in self.scrape()
            if n == name and all(got.get(k) == val for k, val in want.items())
        ]
        return sum(values) if values else None

    def _buckets(self, name: str) -> dict[float, float]:
        buckets: dict[float, float] = {}
        for sample_name, labels, value in self.scrape():
            if sample_name == f"{name}_bucket":
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + value
        return buckets

    def latency_quantile(self, name: str, quantile: float, window_s: float) -> float | None:
        """`histogram_quantile(q, increase(name_bucket[window]))`, as Prometheus computes it."""
        before = self._buckets(name)
        time.sleep(window_s)
        after = self._buckets(name)
        increase = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
        if not increase or increase[-1][1] <= 0:
            return None
        rank = quantile * increase[-1][1]
        lower_le, lower_count = 0.0, 0.0
        for le, count in increase:
            if count >= rank:
                if le == float("inf"):
                    return lower_le  # Prometheus answers the highest finite bound
                span = count - lower_count
                return lower_le + (le - lower_le) * ((rank - lower_count) / span if span else 1)
            lower_le, lower_count = le, count
        return lower_le

    def request_counts(self) -> tuple[float, float]:
        """Total requests and 5xx requests served so far (counter values)."""
        total = errors = 0.0
        for name, labels, value in self.scrape():
            if name != REQUESTS_METRIC:
                continue
            total += value
            if labels.get("code", "").startswith("5"):
                errors += value
        return total, errors

    def error_rate(self, window_s: float) -> ErrorRateSample:
        """The 5xx share of the requests served during the next ``window_s`` seconds."""
        started = time.monotonic()
        total_before, errors_before = self.request_counts()
        time.sleep(window_s)
        total_after, errors_after = self.request_counts()
        return ErrorRateSample(
            requests=max(0.0, total_after - total_before),
            errors=max(0.0, errors_after - errors_before),
            window_s=round(time.monotonic() - started, 3),
        )
