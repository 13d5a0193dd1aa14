"""Reaching a running Sandbox the way users do: kubectl and Prometheus-style scrapes."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from oncall_sandbox import Sandbox

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NAMESPACE = "gremlinsai"
BLUE = "gremlinsai-backend-blue"
SERVICE = "gremlinsai-service"


class Cluster:
    """A started Sandbox plus the ways a user reaches it: kubectl and HTTP."""

    def __init__(self, sb: Sandbox, namespace: str = NAMESPACE, service: str = SERVICE) -> None:
        self.sb, self.namespace = sb, namespace
        self.service_url = sb.service_url(namespace, service)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against the sandbox (in the cluster's namespace)."""
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.sb.kubeconfig_path), "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def error_rate(self) -> float:
        """The backend Service's 5xx rate between two /metrics scrapes."""
        return error_rate(self.service_url)

    @staticmethod
    def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
        """Poll until `predicate()` is truthy."""
        wait_for(predicate, timeout, what)


def request_counts(base_url: str) -> dict[str, float]:
    """`http_requests_total` summed by status code, from one /metrics scrape."""
    text = httpx.get(f"{base_url}/metrics").text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "http_requests":
            continue
        for sample in family.samples:
            if sample.name == "http_requests_total":
                code = sample.labels["code"]
                counts[code] = counts.get(code, 0.0) + sample.value
    return counts


def error_rate(base_url: str, min_requests: int = 1000, timeout: float = 10.0) -> float:
    """5xx share of the requests between two scrapes, as a Prometheus rate() would see it."""
    before = request_counts(base_url)
    deadline = time.monotonic() + timeout
    while True:
        after = request_counts(base_url)
        delta = {c: after.get(c, 0.0) - before.get(c, 0.0) for c in after}
        total = sum(delta.values())
        if total >= min_requests:
            return sum(v for c, v in delta.items() if c.startswith("5")) / total
        if time.monotonic() > deadline:
            raise AssertionError(f"only {total} requests in {timeout}s")
        time.sleep(0.05)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll a zero-argument callable until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one /metrics scrape, keyed by (name, sorted labels)."""
    text = httpx.get(f"{base_url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def gauge(base_url: str, name: str) -> list[float]:
    """Values of a gauge across its label sets."""
    return [v for (n, _), v in scrape(base_url).items() if n == name]


def quantile(
    base_url: str, metric: str, q: float, min_count: int = 300, timeout: float = 10.0
) -> float:
    """A histogram quantile over the requests between two scrapes (histogram_quantile-like)."""
    before = scrape(base_url)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.1)
        after = scrape(base_url)
        buckets: dict[float, float] = {}
        for (name, labels), value in after.items():
            if name == f"{metric}_bucket":
                le = float(dict(labels)["le"])
                delta = value - before.get((name, labels), 0.0)
                buckets[le] = buckets.get(le, 0.0) + delta
        total = buckets.get(float("inf"), 0.0)
        if total >= min_count:
            return next(le for le in sorted(buckets) if buckets[le] >= q * total)
        if time.monotonic() > deadline:
            raise AssertionError(f"only {total} observations of {metric} in {timeout}s")
