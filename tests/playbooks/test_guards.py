"""Guards inside the mitigation task: each refusal changes nothing in the cluster."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from prefect import flow

from oncall.approval import ApprovalDecision
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import UnsafeToRemediate
from oncall.guards import Guard, GuardPolicy
from oncall.models import Action, Incident, Severity
from oncall.observations import ChangePlan
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tasks.mitigations import apply_plan, plan_scale
from tasks.rollback import plan_rollback
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster

APPROVED = ApprovalDecision(approve=True, approver="jane")


def _guard(policy: GuardPolicy) -> Guard:
    return Guard(policy, IncidentStore(OncallSettings().store_url), PrefectApi())


def _incident(faulted: FaultedCluster) -> Incident:
    # A fresh service name per test keeps budgets and concurrency slots apart.
    alert = faulted.alert.model_copy(
        update={"labels": {**faulted.alert.labels, "service": f"svc-{uuid.uuid4().hex[:8]}"}}
    )
    return Incident(alert=alert, severity=Severity.P1)


@flow
def _apply(
    faulted: FaultedCluster,
    guard: Guard,
    incident: Incident,
    kind: str,
    arg: Any,
    approval: ApprovalDecision | None,
) -> Action:
    if kind == "rollback":
        plan: ChangePlan = plan_rollback(faulted.kube, NAMESPACE, BLUE, 0)
    else:
        plan = plan_scale(faulted.kube, NAMESPACE, BLUE, arg)
    return apply_plan(faulted.kube, guard, incident, plan, approval)


def _unchanged(faulted: FaultedCluster) -> None:
    health = faulted.kube.health(NAMESPACE, BLUE)
    assert (health.revision, health.replicas) == (3, 3)


@pytest.mark.parametrize(
    ("policy", "kind", "arg", "approval", "message"),
    [
        (GuardPolicy(allowed_namespaces=["other"]), "scale", 4, APPROVED, "allow-list"),
        (GuardPolicy(allowed_namespaces=[NAMESPACE]), "rollback", 0, None, "needs an approval"),
        (
            GuardPolicy(allowed_namespaces=[NAMESPACE]),
            "rollback",
            0,
            ApprovalDecision(approve=False, approver="sam"),
            "needs an approval",
        ),
        (GuardPolicy(allowed_namespaces=[NAMESPACE], max_replicas=5), "scale", 6, None, "cap"),
        (
            # The alert was about the green colour: a plan for blue is another workload's.
            GuardPolicy(
                allowed_namespaces=[NAMESPACE],
                allowed_targets=[f"{NAMESPACE}/deployment/gremlinsai-backend-green"],
            ),
            "scale",
            4,
            APPROVED,
            "neither the alert's subject nor a workload of its service",
        ),
        (
            # A subject in no catalog entry: nothing may change.
            GuardPolicy(allowed_namespaces=[NAMESPACE], allowed_targets=[]),
            "rollback",
            0,
            APPROVED,
            "may change: nothing",
        ),
        (
            GuardPolicy(allowed_namespaces=[NAMESPACE], budget_per_hour={"scale": 0}),
            "scale",
            4,
            None,
            "budget spent",
        ),
    ],
)
def test_refusals_change_nothing(
    faulted: FaultedCluster,
    policy: GuardPolicy,
    kind: str,
    arg: int,
    approval: ApprovalDecision | None,
    message: str,
) -> None:
    with pytest.raises(UnsafeToRemediate, match=message):
        _apply(faulted, _guard(policy), _incident(faulted), kind, arg, approval)
    _unchanged(faulted)


def test_budget_allows_then_refuses(faulted: FaultedCluster) -> None:
    guard = _guard(GuardPolicy(allowed_namespaces=[NAMESPACE], budget_per_hour={"scale": 2}))
    incident = _incident(faulted)
    _apply(faulted, guard, incident, "scale", 4, None)
    _apply(faulted, guard, incident, "scale", 5, None)
    with pytest.raises(UnsafeToRemediate, match="budget spent: 2 scale"):
        _apply(faulted, guard, incident, "scale", 6, None)
    assert faulted.kube.health(NAMESPACE, BLUE).replicas == 5


def test_a_refused_action_costs_no_budget(faulted: FaultedCluster) -> None:
    policy = GuardPolicy(
        allowed_namespaces=[NAMESPACE], max_replicas=5, budget_per_hour={"scale": 1}
    )
    guard = _guard(policy)
    incident = _incident(faulted)
    for _ in range(3):
        with pytest.raises(UnsafeToRemediate, match="above the cap"):
            _apply(faulted, guard, incident, "scale", 6, None)
    assert guard.spent(incident.alert.service, "scale") == 0
    _apply(faulted, guard, incident, "scale", 4, None)  # the one allowed scale is still there
    assert guard.spent(incident.alert.service, "scale") == 1
    with pytest.raises(UnsafeToRemediate, match="budget spent: 1 scale"):
        _apply(faulted, guard, incident, "scale", 5, None)
    assert faulted.kube.health(NAMESPACE, BLUE).replicas == 4


def test_second_concurrent_remediation_on_the_same_service_is_refused(
    faulted: FaultedCluster,
) -> None:
    guard = _guard(GuardPolicy(allowed_namespaces=[NAMESPACE], concurrency_wait_s=0.5))
    incident = _incident(faulted)
    holding, release = threading.Event(), threading.Event()

    def first_remediation() -> None:
        with guard.prefect.exclusive(f"oncall-remediate-{incident.alert.service}", 5):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=first_remediation, daemon=True)
    holder.start()
    assert holding.wait(30)
    try:
        with pytest.raises(UnsafeToRemediate, match="refusing to act concurrently"):
            _apply(faulted, guard, incident, "scale", 4, None)
        _unchanged(faulted)
    finally:
        release.set()
        holder.join(10)
    # Once the first one is done, the slot is free again.
    _apply(faulted, guard, incident, "scale", 4, None)
    assert faulted.kube.health(NAMESPACE, BLUE).replicas == 4


def test_dry_run_plans_and_changes_nothing(faulted: FaultedCluster) -> None:
    guard = _guard(GuardPolicy(allowed_namespaces=[NAMESPACE], dry_run=True))
    action = _apply(faulted, guard, _incident(faulted), "rollback", 0, APPROVED)
    assert action.dry_run and action.kind == "rollback"
    assert action.detail["after"]["revision"] == 2
    _unchanged(faulted)
