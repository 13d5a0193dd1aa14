"""The intake's Prometheus metrics, in a registry of their own per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IntakeMetrics:
    """Received, rejected by reason, deduplicated, dispatched, dispatch lag."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "oncall_intake_alerts_received",
            "Alert occurrences received in accepted messages, by source.",
            ["source"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "oncall_intake_requests_rejected",
            "Requests refused, by source and reason.",
            ["source", "reason"],
            registry=self.registry,
        )
        self.alerts_refused = Counter(
            "oncall_intake_alerts_refused",
            "Invalid alerts refused one by one inside otherwise accepted messages, by source.",
            ["source"],
            registry=self.registry,
        )
        self.deduplicated = Counter(
            "oncall_intake_alerts_deduplicated",
            "Re-sent alert occurrences that started nothing new, by source.",
            ["source"],
            registry=self.registry,
        )
        self.attached = Counter(
            "oncall_intake_alerts_attached",
            "New alert occurrences attached to an open incident of their service.",
            ["source"],
            registry=self.registry,
        )
        self.dispatched = Counter(
            "oncall_intake_flow_runs_dispatched",
            "Flow runs created in Prefect, by kind (playbook, post-incident).",
            ["kind"],
            registry=self.registry,
        )
        self.dispatch_errors = Counter(
            "oncall_intake_dispatch_errors",
            "Failed attempts to create a flow run, by kind of error.",
            ["error"],
            registry=self.registry,
        )
        self.dispatch_lag = Histogram(
            "oncall_intake_dispatch_lag_seconds",
            "Time from an alert's acceptance to its flow run existing in Prefect.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "oncall_intake_dispatch_oldest_pending_seconds",
            "Age of the oldest flow run still owed to Prefect (0: none owed): the dispatch lag.",
            registry=self.registry,
        )
        self.pending = Gauge(
            "oncall_intake_dispatch_pending",
            "Flow runs owed to Prefect (accepted, not yet created).",
            registry=self.registry,
        )
