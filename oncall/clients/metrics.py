"""Reads a service's request metrics the way Prometheus would: counters between two scrapes."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from oncall.errors import TransientError
from oncall.observations import ErrorRateSample

REQUESTS_METRIC = "http_requests_total"


class ServiceMetrics:
    """Scrapes one service's Prometheus `/metrics` endpoint."""

    def __init__(self, base_url: str, http: httpx.Client | None = None, timeout_s: float = 5.0):
        self.url = base_url.rstrip("/") + "/metrics"
        self.http = http or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.http.close()

    def request_counts(self) -> tuple[float, float]:
        """Total requests and 5xx requests served so far (counter values)."""
        try:
            response = self.http.get(self.url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise TransientError(f"scrape of {self.url} failed: {exc}") from exc
        total = errors = 0.0
        for family in text_string_to_metric_families(response.text):
            # The parser names a counter family without its `_total` suffix.
            if family.name not in (REQUESTS_METRIC, REQUESTS_METRIC.removesuffix("_total")):
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                total += sample.value
                if sample.labels.get("code", "").startswith("5"):
                    errors += sample.value
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
