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
from oncall.errors import UnsafeToRemediate
from oncall.models import utcnow
from oncall.store import IncidentStore, remediation_ledger


class GuardPolicy(BaseModel):
    """What a playbook may do on its own: a pydantic part of every playbook config."""

    allowed_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces the playbook may change."
    )
    max_replicas: int = Field(default=10, ge=1, description="Replica cap for any scale-up.")
    budget_per_hour: dict[str, int] = Field(
        default_factory=lambda: {
            "rollback": 2,
            "switch": 2,
            "restart": 3,
            "scale": 3,
            "set_env": 2,
            "fallback": 2,
            "config": 2,
            "warm_cache": 3,
        },
        description="Actions of each kind allowed per service per hour; then escalate.",
    )
    require_approval: list[str] = Field(
        default_factory=lambda: ["rollback", "switch"],
        description="Action kinds that need a human approval first.",
    )
    concurrency_wait_s: float = Field(
        default=2.0, ge=0, description="How long to wait for another remediation to finish."
    )
    dry_run: bool = Field(
        default=False, description="Plan and report every action, change nothing."
    )


class Guard:
    """Checks a policy and holds the per-service remediation slot while an action runs."""

    def __init__(self, policy: GuardPolicy, store: IncidentStore, prefect: PrefectApi) -> None:
        self.policy, self.store, self.prefect = policy, store, prefect

    def check_namespace(self, namespace: str) -> None:
        """Refuse a namespace outside the allow-list."""
        if namespace not in self.policy.allowed_namespaces:
            raise UnsafeToRemediate(
                f"namespace {namespace!r} is not in the allow-list {self.policy.allowed_namespaces}"
            )

    def check_replicas(self, replicas: int) -> None:
        """Refuse a scale beyond the cap."""
        if replicas > self.policy.max_replicas:
            raise UnsafeToRemediate(
                f"{replicas} replicas is above the cap of {self.policy.max_replicas}"
            )

    def check_approval(self, kind: str, approval: ApprovalDecision | None) -> None:
        """Refuse an action that needs an approval and has none."""
        if kind in self.policy.require_approval and (approval is None or not approval.approve):
            raise UnsafeToRemediate(f"{kind} needs an approval and has none")

    def spent(self, service: str, kind: str) -> int:
        """Actions of ``kind`` on ``service`` within the last hour."""
        since = utcnow() - timedelta(hours=1)
        query = select(func.count()).where(
            remediation_ledger.c.service == service,
            remediation_ledger.c.kind == kind,
            remediation_ledger.c.at >= since,
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _check_budget(self, service: str, kind: str) -> None:
        limit = self.policy.budget_per_hour.get(kind, 1)
        used = self.spent(service, kind)
        if used >= limit:
            raise UnsafeToRemediate(
                f"budget spent: {used} {kind} action(s) on {service} in the last hour "
                f"(limit {limit})"
            )

    def _spend(self, service: str, kind: str, incident_id: str) -> None:
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
        kind: str,
        incident_id: str,
        approval: ApprovalDecision | None,
    ) -> Iterator[bool]:
        """Run one action under every guard; yields False when only a dry run is allowed."""
        self.check_namespace(namespace)
        self.check_approval(kind, approval)
        if self.policy.dry_run:
            yield False
            return
        with self.prefect.exclusive(f"oncall-remediate-{service}", self.policy.concurrency_wait_s):
            self._check_budget(service, kind)
            try:
                yield True
            except UnsafeToRemediate:
                raise  # refused before anything changed: it costs no budget
            except BaseException:
                self._spend(service, kind, incident_id)  # it may have reached the cluster
                raise
            self._spend(service, kind, incident_id)
