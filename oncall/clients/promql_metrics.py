"""A service's readings asked of Prometheus: the per-pod series it scraped, aggregated.

The same three readings as :class:`oncall.clients.metrics.ServiceMetrics` (5xx share over a
window, a latency quantile, a gauge), so a playbook reads either. Asked of Prometheus they
are right however many replicas a Service has: each pod is its own scrape target, and
``increase()`` handles a pod's counters restarting at zero, where two scrapes through a
Service URL may read two different pods.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from oncall.clients.prometheus import PrometheusClient
from oncall.models import utcnow
from oncall.observations import ErrorRateSample

REQUESTS_METRIC = "http_requests_total"


class Readings(Protocol):
    """What a playbook reads of a service, whoever answers."""

    def error_rate(self, window_s: float) -> ErrorRateSample:
        """The 5xx share of the requests served over the next ``window_s`` seconds."""
        ...

    def latency_quantile(self, name: str, quantile: float, window_s: float) -> float | None:
        """The ``quantile`` of histogram ``name`` over a window; None without traffic."""
        ...

    def gauge(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The sum of a gauge's series matching ``labels``; None when none is exported."""
        ...

    def queries(self) -> list[str]:
        """What was asked so far, for the evidence."""
        ...


@dataclass(frozen=True)
class Reading:
    """One query and what it answered (kept as evidence)."""

    query: str
    value: float | None
    at: datetime


def selector(labels: dict[str, str]) -> str:
    """``{k="v",...}`` with PromQL's string escaping."""
    escaped = {k: v.replace("\\", "\\\\").replace('"', '\\"') for k, v in sorted(labels.items())}
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped.items()) + "}"


@dataclass
class PromQLMetrics:
    """Readings of the series that ``labels`` select (e.g. namespace and service)."""

    client: PrometheusClient
    labels: dict[str, str]
    scrape_interval_s: float = 15.0
    readings: list[Reading] = field(default_factory=list)

    def _range(self, window_s: float) -> str:
        # A rate needs two samples inside its range: never less than two scrape intervals.
        return f"{max(math.ceil(window_s), math.ceil(2 * self.scrape_interval_s))}s"

    def _value(self, query: str) -> float | None:
        value = self.client.value(query)
        self.readings.append(Reading(query, value, utcnow()))
        return value

    def _sel(self, **extra: str) -> str:
        return selector({**self.labels, **extra})

    def error_rate(self, window_s: float) -> ErrorRateSample:
        """The 5xx share of the requests served over the ``window_s`` seconds from now."""
        started = time.monotonic()
        time.sleep(window_s)
        window = self._range(window_s)
        everything = selector(self.labels)
        # The code matcher needs a regex, which ``selector`` does not write.
        errors_sel = everything[:-1] + ("," if self.labels else "") + 'code=~"5.."}'
        total = self._value(f"sum(increase({REQUESTS_METRIC}{everything}[{window}]))")
        errors = self._value(f"sum(increase({REQUESTS_METRIC}{errors_sel}[{window}]))")
        return ErrorRateSample(
            requests=total or 0.0,
            errors=errors or 0.0,
            window_s=round(time.monotonic() - started, 3),
        )

    def latency_quantile(self, name: str, quantile: float, window_s: float) -> float | None:
        """``histogram_quantile`` over the ``window_s`` seconds from now; None without traffic."""
        time.sleep(window_s)
        window = self._range(window_s)
        return self._value(
            f"histogram_quantile({quantile:g}, "
            f"sum by (le) (rate({name}_bucket{self._sel()}[{window}])))"
        )

    def gauge(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The sum of the gauge's series of this service matching ``labels``."""
        return self._value(f"sum({name}{self._sel(**(labels or {}))})")

    def queries(self) -> list[str]:
        """The PromQL asked so far, in order."""
        return [r.query for r in self.readings]
