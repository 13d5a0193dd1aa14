"""Action kinds are an enum: a mistyped kind in a policy is an error, never a skipped guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from oncall.guards import GuardPolicy
from oncall.models import ActionKind, Severity
from oncall.observations import ChangePlan
from oncall.playbooks import PodCrashLoopConfig


@pytest.mark.parametrize(
    "policy",
    [
        {"require_approval": ["rollback", "restrat"]},
        {"budget_per_hour": {"restrat": 3}},
        {"verified_approver_required": {"restrat": ["P1"]}},
    ],
)
def test_a_mistyped_action_kind_is_a_validation_error_naming_it(policy: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        GuardPolicy.model_validate(policy)
    text = str(caught.value)
    assert "restrat" in text
    assert "'rollback'" in text and "'warm_cache'" in text  # the kinds it could have been


def test_a_mistyped_kind_in_deployment_parameters_fails_the_config() -> None:
    # What prefect.yaml's `parameters.config` holds, validated as Prefect does it.
    with pytest.raises(ValidationError, match="restrat"):
        PodCrashLoopConfig.model_validate({"guard": {"require_approval": ["restrat"]}})


def test_policies_read_from_yaml_strings_hold_the_enum() -> None:
    policy = GuardPolicy.model_validate(
        {"require_approval": ["restart"], "verified_approver_required": {"restart": ["P1"]}}
    )
    assert policy.require_approval == [ActionKind.RESTART]
    assert policy.needs_approval(ActionKind.RESTART)
    assert not policy.needs_approval(ActionKind.ROLLBACK)
    assert policy.needs_verified_approver(ActionKind.RESTART, Severity.P1)
    assert not policy.needs_verified_approver(ActionKind.RESTART, Severity.P2)


def test_the_undo_of_a_set_env_keeps_its_container() -> None:
    plan = ChangePlan(
        kind="set_env",
        namespace="cronos-ai",
        target="deployment/cronos-ai",
        container="worker",
        before={"env.DB_POOL_SIZE": "10"},
        after={"env.DB_POOL_SIZE": "50"},
    )
    undo = plan.inverse()
    assert undo is not None
    assert undo.container == "worker"
    assert undo.after == {"env.DB_POOL_SIZE": "10"}


def test_a_plan_of_an_unknown_kind_cannot_be_built() -> None:
    with pytest.raises(ValidationError, match="delete_namespace"):
        ChangePlan(kind="delete_namespace", namespace="x", target="namespace/x")


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (ActionKind.SCALE, "daemonset/node-agent"),  # one pod per node: no replicas
        (ActionKind.SET_ENV, "statefulset/ledger-db"),  # `set env` here patches Deployments
        (ActionKind.CONFIG, "deployment/ledger"),
        (ActionKind.RESTART, "configmap/ledger-config"),
        (ActionKind.SWITCH, "deployment/ledger"),
    ],
)
def test_a_plan_for_an_object_its_kind_cannot_change_is_refused_before_any_call(
    kind: ActionKind, target: str
) -> None:
    from oncall.errors import UnsafeToRemediate
    from oncall.models import Alert, Incident, utcnow
    from tasks.mitigations import apply_plan

    plan = ChangePlan(kind=kind, namespace="payments", target=target, after={"replicas": 3})
    alert = Alert(name="X", starts_at=utcnow(), fingerprint="f1")
    incident = Incident(alert=alert, severity=Severity.P3)
    # No cluster and no guard are needed: the refusal comes before either is used.
    with pytest.raises(UnsafeToRemediate, match=f"a {kind} cannot change {target}"):
        apply_plan.fn(None, None, incident, plan, None)  # type: ignore[arg-type]
