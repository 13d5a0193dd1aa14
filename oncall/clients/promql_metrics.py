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

from pydantic import BaseModel, Field, field_validator

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


def matchers(labels: dict[str, str]) -> str:
    """``k="v",...`` (without braces) with PromQL's string escaping."""
    escaped = {k: v.replace("\\", "\\\\").replace('"', '\\"') for k, v in sorted(labels.items())}
    return ",".join(f'{k}="{v}"' for k, v in escaped.items())


def selector(labels: dict[str, str]) -> str:
    """``{k="v",...}`` with PromQL's string escaping."""
    return "{" + matchers(labels) + "}"


_EXAMPLE = {
    "sel": 'namespace="ns",service="svc"',
    "range": "30s",
    "quantile": "0.95",
    "histogram": "http_request_duration_seconds",
    "metric": "db_pool_size",
}


class MetricQueries(BaseModel):
    """The PromQL a playbook asks of Prometheus, for services whose metrics differ.

    Templates in Python's format syntax: ``{sel}`` is the service's label matchers (without
    braces: write ``{{{sel}}}`` for a plain selector, ``{{{sel},code=~"5.."}}`` to add one),
    ``{range}`` the rate range; the latency template also gets ``{quantile}`` and
    ``{histogram}``, the gauge template ``{metric}``. The defaults are the conventions of
    the Prometheus client libraries (``http_requests_total`` with a ``code`` label, a
    ``_bucket`` histogram).
    """

    requests: str = Field(
        default="sum(increase(http_requests_total{{{sel}}}[{range}]))",
        description="Requests served over the range.",
    )
    errors: str = Field(
        default='sum(increase(http_requests_total{{{sel},code=~"5.."}}[{range}]))',
        description="Of them, the ones answered 5xx.",
    )
    latency: str = Field(
        default="histogram_quantile({quantile}, "
        "sum by (le) (rate({histogram}_bucket{{{sel}}}[{range}])))",
        description="A latency quantile of a histogram.",
    )
    gauge: str = Field(default="sum({metric}{{{sel}}})", description="A gauge's value.")
    gauges: dict[str, str] = Field(
        default_factory=dict,
        description="A gauge's own query, by metric name (e.g. avg for a ratio per pod).",
    )

    @field_validator("requests", "errors", "latency", "gauge")
    @classmethod
    def _formats(cls, template: str) -> str:
        try:
            template.format(**_EXAMPLE)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{template!r} is not a query template ({exc!r}); its placeholders are "
                f"{', '.join('{' + k + '}' for k in _EXAMPLE)}, and literal braces are doubled"
            ) from exc
        return template

    @field_validator("gauges")
    @classmethod
    def _gauges_format(cls, templates: dict[str, str]) -> dict[str, str]:
        for name, template in templates.items():
            try:
                template.format(**_EXAMPLE)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"gauges[{name!r}]: {template!r}: {exc!r}") from exc
        return templates


@dataclass
class PromQLMetrics:
    """Readings of the series that ``labels`` select (e.g. namespace and service)."""

    client: PrometheusClient
    labels: dict[str, str]
    scrape_interval_s: float = 15.0
    templates: MetricQueries = field(default_factory=MetricQueries)
    readings: list[Reading] = field(default_factory=list)

    def _range(self, window_s: float) -> str:
        # A rate needs two samples inside its range, wherever the scrapes fall in it: never
        # less than two and a half scrape intervals.
        return f"{max(math.ceil(window_s), math.ceil(2.5 * self.scrape_interval_s))}s"

    def _value(self, query: str) -> float | None:
        value = self.client.value(query)
        self.readings.append(Reading(query, value, utcnow()))
        return value

    def error_rate(self, window_s: float) -> ErrorRateSample:
        """The 5xx share of the requests served over the ``window_s`` seconds from now."""
        started = time.monotonic()
        time.sleep(window_s)
        asked = {"sel": matchers(self.labels), "range": self._range(window_s)}
        total = self._value(self.templates.requests.format(**asked))
        errors = self._value(self.templates.errors.format(**asked))
        return ErrorRateSample(
            requests=total or 0.0,
            errors=errors or 0.0,
            window_s=round(time.monotonic() - started, 3),
        )

    def latency_quantile(self, name: str, quantile: float, window_s: float) -> float | None:
        """``histogram_quantile`` over the ``window_s`` seconds from now; None without traffic."""
        time.sleep(window_s)
        return self._value(
            self.templates.latency.format(
                sel=matchers(self.labels),
                range=self._range(window_s),
                quantile=f"{quantile:g}",
                histogram=name,
            )
        )

    def gauge(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The gauge's value for this service (its own query, else the gauge template)."""
        template = self.templates.gauges.get(name, self.templates.gauge)
        return self._value(
            template.format(
                sel=matchers({**self.labels, **(labels or {})}),
                metric=name,
                range=self._range(self.scrape_interval_s),
            )
        )

    def queries(self) -> list[str]:
        """The PromQL asked so far, in order."""
        return [r.query for r in self.readings]
