"""Guards on every destructive action: allow-list, approval, caps, one at a time, budgets.

They run inside the mitigation tasks, so a flow that forgets a check is still stopped.
A refusal raises UnsafeToRemediate; the playbook escalates instead of acting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from oncall.approval import ApprovalDecision
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import AutomationPaused, UnsafeToRemediate
from oncall.models import ActionKind, Severity, utcnow
from oncall.pauses import Pauses
from oncall.store import IncidentStore, remediation_ledger


class GuardPolicy(BaseModel):
    """What a playbook may do on its own: a pydantic part of every playbook config."""

    allowed_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces the playbook may change."
    )
    allowed_targets: list[str] | None = Field(
        default=None,
        description="`namespace/kind/name` of the only objects the playbook may change (the "
        "alert's subject and the workloads its catalog entry lists); None: any object in the "
        "allowed namespaces.",
    )
    max_replicas: int = Field(default=10, ge=1, description="Replica cap for any scale-up.")
    budget_per_hour: dict[ActionKind, int] = Field(
        default_factory=lambda: {
            ActionKind.ROLLBACK: 2,
            ActionKind.SWITCH: 2,
            ActionKind.RESTART: 3,
            ActionKind.SCALE: 3,
            ActionKind.SET_ENV: 2,
            ActionKind.FALLBACK: 2,
            ActionKind.CONFIG: 2,
            ActionKind.WARM_CACHE: 3,
        },
        description="Actions of each kind allowed per service per hour; then escalate.",
    )
    require_approval: list[ActionKind] = Field(
        default_factory=lambda: [ActionKind.ROLLBACK, ActionKind.SWITCH],
        description="Action kinds that need a human approval first.",
    )
    verified_approver_required: dict[ActionKind, list[Severity]] = Field(
        default_factory=lambda: {
            ActionKind.ROLLBACK: [Severity.P1, Severity.P2],
            ActionKind.SWITCH: [Severity.P1, Severity.P2],
        },
        description="Action kinds and the severities for which only a verified approver "
        "(Slack, or `oncall approve` with an approver token) may decide; a decision typed "
        "into the Prefect UI is refused and the run keeps waiting.",
    )
    concurrency_wait_s: float = Field(
        default=2.0, ge=0, description="How long to wait for another remediation to finish."
    )
    dry_run: bool = Field(
        default=False, description="Plan and report every action, change nothing."
    )

    def needs_approval(self, kind: ActionKind) -> bool:
        """True when ``kind`` needs a human approval before it is applied."""
        return kind in self.require_approval

    def needs_verified_approver(self, kind: ActionKind, severity: Severity) -> bool:
        """True when only a verified approver may decide on ``kind`` at ``severity``."""
        return severity in self.verified_approver_required.get(kind, [])


class Guard:
    """Checks a policy and holds the per-service remediation slot while an action runs."""

    def __init__(self, policy: GuardPolicy, store: IncidentStore, prefect: PrefectApi) -> None:
        self.policy, self.store, self.prefect = policy, store, prefect
        # Other names of the service (its catalog entry's): a pause of either stops changes.
        self.also_known_as: tuple[str, ...] = ()

    def check_pause(self, service: str) -> None:
        """Refuse any change while the automation is paused for the service (or for all)."""
        pause = Pauses(self.store).blocking(service, *self.also_known_as)
        if pause is not None:
            raise AutomationPaused(f"not applied: {pause.describe()}")

    def check_namespace(self, namespace: str) -> None:
        """Refuse a namespace outside the allow-list."""
        if namespace not in self.policy.allowed_namespaces:
            raise UnsafeToRemediate(
                f"namespace {namespace!r} is not in the allow-list {self.policy.allowed_namespaces}"
            )

    def check_target(self, namespace: str, target: str) -> None:
        """Refuse a change to anything but the alert's subject and its service's workloads."""
        allowed = self.policy.allowed_targets
        if allowed is not None and f"{namespace}/{target}" not in allowed:
            raise UnsafeToRemediate(
                f"{namespace}/{target} is neither the alert's subject nor a workload of its "
                f"service (may change: {', '.join(sorted(allowed)) or 'nothing'})"
            )

    def check_replicas(self, replicas: int) -> None:
        """Refuse a scale beyond the cap."""
        if replicas > self.policy.max_replicas:
            raise UnsafeToRemediate(
                f"{replicas} replicas is above the cap of {self.policy.max_replicas}"
            )

    def check_approval(self, kind: ActionKind, approval: ApprovalDecision | None) -> None:
        """Refuse an action that needs an approval and has none."""
        if self.policy.needs_approval(kind) and (approval is None or not approval.approve):
            raise UnsafeToRemediate(f"{kind} needs an approval and has none")

    def spent(self, service: str, kind: ActionKind) -> int:
        """Actions of ``kind`` on ``service`` within the last hour."""
        since = utcnow() - timedelta(hours=1)
        query = select(func.count()).where(
            remediation_ledger.c.service == service,
            remediation_ledger.c.kind == kind,
            remediation_ledger.c.at >= since,
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _check_budget(self, service: str, kind: ActionKind) -> None:
        limit = self.policy.budget_per_hour.get(kind, 1)
        used = self.spent(service, kind)
        if used >= limit:
            raise UnsafeToRemediate(
                f"budget spent: {used} {kind} action(s) on {service} in the last hour "
                f"(limit {limit})"
            )

    def _spend(self, service: str, kind: ActionKind, incident_id: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(
                remediation_ledger.insert().values(
                    id=uuid.uuid4().hex,
                    service=service,
                    kind=kind,
                    incident_id=incident_id,
                    at=utcnow(),
                )
            )

    @contextmanager
    def remediation(
        self,
        *,
        service: str,
        namespace: str,
        kind: ActionKind,
        incident_id: str,
        approval: ApprovalDecision | None,
        target: str,
    ) -> Iterator[bool]:
        """Run one action under every guard; yields False when only a dry run is allowed."""
        self.check_namespace(namespace)
        self.check_target(namespace, target)
        self.check_approval(kind, approval)
        if self.policy.dry_run:
            yield False
            return
        with self.prefect.exclusive(f"oncall-remediate-{service}", self.policy.concurrency_wait_s):
            self.check_pause(service)  # again under the lock: it may have begun meanwhile
            self._check_budget(service, kind)
            try:
                yield True
            except UnsafeToRemediate:
                raise  # refused before anything changed: it costs no budget
            except BaseException:
                self._spend(service, kind, incident_id)  # it may have reached the cluster
                raise
            self._spend(service, kind, incident_id)
