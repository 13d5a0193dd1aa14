"""What the playbooks observe and propose: typed results of the clients and tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from oncall.models import Action, ActionKind


class PodSummary(BaseModel):
    """One pod as `kubectl get pods` shows it, plus why it is not ready."""

    name: str
    phase: str
    ready: bool
    restarts: int
    images: list[str]
    waiting_reason: str | None = None


class DeploymentHealth(BaseModel):
    """A deployment's rollout state and the health of its pods."""

    namespace: str
    name: str
    revision: int
    images: list[str]
    replicas: int
    ready_replicas: int
    updated_replicas: int
    available_replicas: int
    rollout_complete: bool
    rollout_failed: bool
    pods: list[PodSummary] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """All desired replicas ready and the rollout done."""
        return self.rollout_complete and self.ready_replicas >= self.replicas


class Revision(BaseModel):
    """One entry of a deployment's rollout history (one ReplicaSet)."""

    revision: int
    replicaset: str
    images: list[str]
    created_at: datetime
    change_cause: str = ""


class RecentChange(BaseModel):
    """A rollout that may explain the alert: the current revision and what it replaced."""

    deployment: str
    revision: int
    images: list[str]
    rolled_out_at: datetime
    previous_revision: int | None
    previous_images: list[str]
    minutes_before_alert: float
    suspicious: bool


class RollbackPlan(BaseModel):
    """The dry-run plan of a rollback: what `kubectl rollout undo` would change."""

    namespace: str
    deployment: str
    current_revision: int
    current_images: list[str]
    target_revision: int
    target_images: list[str]
    target_replicaset: str
    replicas: int
    no_op: bool = False
    template: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    def as_change(self) -> ChangePlan:
        """The rollback as a generic change plan (what the guards and the approval see)."""
        return ChangePlan(
            kind="rollback",
            namespace=self.namespace,
            target=f"deployment/{self.deployment}",
            before={"revision": self.current_revision, "images": self.current_images},
            after={"revision": self.target_revision, "images": self.target_images},
            note=f"template of ReplicaSet {self.target_replicaset}; the controller records it "
            "as a new revision",
        )

    def describe(self) -> str:
        """The plan as a human reads it before approving."""
        if self.no_op:
            return (
                f"No-op: revision {self.target_revision} of {self.namespace}/{self.deployment} "
                "already has the current template."
            )
        return (
            f"Roll back deployment {self.namespace}/{self.deployment} "
            f"from revision {self.current_revision} ({', '.join(self.current_images)}) "
            f"to the template of revision {self.target_revision} "
            f"({', '.join(self.target_images)}, ReplicaSet {self.target_replicaset}); "
            f"{self.replicas} replicas; the controller will record it as a new revision."
        )


class ProbeResult(BaseModel):
    """The outcome of one dependency probe."""

    name: str
    target: str
    ok: bool = Field(description="False only for a dependency probed and found down.")
    latency_ms: float
    detail: str = ""
    probed: bool = Field(default=True, description="False: its address did not resolve.")


def probes_summary(probes: list[ProbeResult]) -> str:
    """`postgresql up, redis DOWN, ...`: one line for findings and approval forms."""
    return ", ".join(
        f"{p.name} {'not probed' if not p.probed else 'up' if p.ok else 'DOWN'}" for p in probes
    )


class ErrorRateSample(BaseModel):
    """5xx share of requests between two scrapes of a service's metrics."""

    requests: float
    errors: float
    window_s: float

    @property
    def rate(self) -> float:
        """Errors per request; 0 when there was no traffic."""
        return self.errors / self.requests if self.requests > 0 else 0.0


class VerifyAnalysis(BaseModel):
    """How a verification judges its measurements (the terms of Argo Rollouts' analysis).

    ``count`` healthy measurements in a row pass (the playbook's ``verify_checks``); no data
    is *inconclusive*, counted neither way, and more than ``inconclusive_limit`` of them end
    the verification unverified; so do more than ``consecutive_error_limit`` failed
    measurements in a row (the metrics source down) and, when set, more than
    ``failure_limit`` unhealthy ones. Unverified always escalates: nothing is "verified"
    that was not measured healthy.
    """

    initial_delay_s: float = Field(
        default=0.0, ge=0, description="Wait this long after the mitigation before measuring."
    )
    failure_limit: int | None = Field(
        default=None,
        ge=0,
        description="Unhealthy measurements allowed before giving up (None: until timeout).",
    )
    inconclusive_limit: int = Field(
        default=5, ge=0, description="Measurements without data allowed before giving up."
    )
    consecutive_error_limit: int = Field(
        default=4, ge=0, description="Failed measurements in a row allowed before giving up."
    )


class Measurement(BaseModel):
    """One measurement of a verification, kept as evidence."""

    at: datetime
    value: float | None
    verdict: str = Field(description="healthy, unhealthy, inconclusive (no data) or error.")
    detail: str = ""


class Verification(BaseModel):
    """The result of verifying a mitigation."""

    passed: bool
    samples: list[float]
    threshold: float
    detail: str = ""
    inconclusive: bool = Field(
        default=False, description="Ended for want of data: neither healthy nor unhealthy."
    )
    unit: str = ""
    measurements: list[Measurement] = Field(default_factory=list)
    queries: list[str] = Field(
        default_factory=list, description="What was asked of the metrics source (PromQL)."
    )

    def describe(self) -> str:
        """One line: the verdict, the values measured, and what they were asked of."""
        verdict = "passed" if self.passed else "inconclusive" if self.inconclusive else "failed"
        values = ", ".join(f"{v:.4g}" for v in self.samples) or "no data"
        asked = "; ".join(self.queries) or "no metrics source"
        return (
            f"verification {verdict}: {self.unit} {values} "
            f"(threshold {self.threshold:.4g}) from {asked}"
        )


class AlertClearance(BaseModel):
    """Whether the incident's alert ended in Alertmanager after the metrics verified."""

    checked: bool = Field(description="False when no Alertmanager is configured.")
    cleared: bool = False
    detail: str = ""
    firing: list[dict[str, str]] = Field(
        default_factory=list, description="Labels of the alerts still firing at the end."
    )


class Diagnosis(BaseModel):
    """Everything the investigation saw: kept on the incident as evidence."""

    health: list[DeploymentHealth]
    probes: list[ProbeResult]
    change: RecentChange | None

    def summary(self) -> str:
        """One paragraph for the approval form and the escalation message."""
        pods = "; ".join(
            f"{h.name} rev {h.revision} {h.ready_replicas}/{h.replicas} ready" for h in self.health
        )
        deps = probes_summary(self.probes)
        change = self.change
        suspect = (
            f"suspect: {change.deployment} rev {change.revision} ({', '.join(change.images)}) "
            f"rolled out {change.minutes_before_alert:.1f} min before the alert"
            if change
            else "no suspect rollout"
        )
        return f"{pods}. Dependencies: {deps}. {suspect}."

    def as_action(self, namespace: str) -> Action:
        """The diagnosis as an incident record entry (kind ``diagnosis``)."""
        detail = {**self.model_dump(mode="json"), "findings": self.summary()}
        return Action(kind="diagnosis", target=namespace, detail=detail)


class ChangePlan(BaseModel):
    """The dry-run plan of one mitigation: what would change, before and after."""

    kind: ActionKind
    namespace: str
    target: str  # "deployment/NAME", "statefulset/NAME", "service/NAME", "configmap/NAME"
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    container: str = Field(default="", description="The container a set_env plan changes.")
    note: str = ""

    def describe(self) -> str:
        """One line a human can approve or reject."""
        changes = ", ".join(
            f"{key}: {self.before.get(key, '-')} -> {value}" for key, value in self.after.items()
        )
        text = f"{self.kind} {self.namespace}/{self.target}: {changes or 'no field changes'}"
        return f"{text} ({self.note})" if self.note else text

    def inverse(self) -> ChangePlan | None:
        """The plan that puts back what this one changes (none for a restart)."""
        if self.kind == ActionKind.RESTART:
            return None
        after = self.before
        if self.kind == ActionKind.ROLLBACK:
            # Undoing a rollback rolls forward to the revision that was current before it.
            after = {"revision": self.before["revision"], "images": self.before["images"]}
        return self.model_copy(
            update={"before": self.after, "after": after, "note": f"undo of: {self.describe()}"}
        )

    def as_markdown(self) -> str:
        """The plan as a table for the Prefect artifact and the approval form."""
        rows = "\n".join(
            f"| `{key}` | `{self.before.get(key, '-')}` | `{value}` |"
            for key, value in self.after.items()
        )
        return (
            f"### Dry-run plan: {self.kind} `{self.namespace}/{self.target}`\n\n"
            f"| field | now | after |\n|---|---|---|\n{rows}\n\n{self.note}\n"
        )
