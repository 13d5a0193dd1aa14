"""The HighApiErrorRate playbook end to end: real Prefect server, sandbox, PostgreSQL, Redis."""

from __future__ import annotations

from typing import Any

import pytest

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Incident, IncidentStatus
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster, Human

GOOD, BAD, OLDEST = (
    "ghcr.io/gremlinsai/backend:1.4.2",
    "ghcr.io/gremlinsai/backend:1.5.0",
    "ghcr.io/gremlinsai/backend:1.4.1",
)


def _run(
    faulted: FaultedCluster, api_url: str, answer: dict[str, Any] | None
) -> tuple[Any, Incident]:
    human = None
    if answer is not None:
        human = Human(api_url, incident_run_name_for(faulted.alert), answer)
        human.start()
    state = high_api_error_rate(alert=faulted.alert, config=faulted.config, return_state=True)
    if human is not None:
        human.join(5)
        assert human.error is None, human.error
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert))
    return state, incident


def test_approved_rollback_restores_the_good_image_under_a_new_revision(
    faulted: FaultedCluster, prefect_api: str
) -> None:
    state, incident = _run(
        faulted, prefect_api, {"approve": True, "approver": "jane.doe", "reason": "bad release"}
    )
    assert state.name == "Resolved", state.message
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert after.images == [GOOD]
    assert after.revision == 4  # 1.4.1 (1), 1.4.2 (2), 1.5.0 (3), rollback (4)
    assert after.rollout_complete
    statuses = [t.status for t in incident.transitions]
    assert statuses == [
        IncidentStatus.TRIGGERED,
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
        IncidentStatus.RESOLVED,
    ]
    times = [t.at for t in incident.transitions]
    assert times == sorted(times)
    (approval,) = incident.approvals
    assert (approval.approver, approval.decision, approval.reason) == (
        "jane.doe",
        "approved",
        "bad release",
    )
    assert times[1] <= approval.at <= times[2]
    rollback = next(a for a in incident.actions if a.kind == "rollback" and not a.dry_run)
    assert rollback.detail["before"] == {"revision": 3, "images": [BAD]}
    assert rollback.detail["after"] == {"revision": 2, "images": [GOOD]}
    rollout = next(a for a in incident.actions if a.kind == "rollout")
    assert rollout.detail == {"revision": 4, "images": [GOOD], "complete": True}
    run = PrefectApi(prefect_api).read_flow_run(incident.flow_run_id)  # type: ignore[arg-type]
    assert run.name == incident_run_name_for(faulted.alert)
    assert {"severity:P1", "service:gremlinsai-backend", f"incident:{incident.id}"} <= set(run.tags)


def test_rejected_approval_changes_nothing_and_escalates(
    faulted: FaultedCluster, prefect_api: str
) -> None:
    state, incident = _run(
        faulted, prefect_api, {"approve": False, "approver": "sam", "reason": "db migration"}
    )
    assert state.name == "Escalated"
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert (after.revision, after.images) == (3, [BAD])
    assert incident.status is IncidentStatus.ESCALATED
    assert incident.approvals[0].decision == "rejected"
    assert incident.approvals[0].approver == "sam"
    assert not [a for a in incident.actions if a.kind == "rollback" and not a.dry_run]


def test_approval_timeout_changes_nothing_and_escalates(
    faulted: FaultedCluster, prefect_api: str
) -> None:
    faulted.config.approval_timeout_s = 2
    state, incident = _run(faulted, prefect_api, None)
    assert state.name == "Escalated"
    assert state.is_failed()
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert (after.revision, after.images) == (3, [BAD])
    assert incident.status is IncidentStatus.ESCALATED
    assert incident.approvals[0].decision == "timed_out"
    assert not [a for a in incident.actions if a.kind == "rollback" and not a.dry_run]


def test_rollback_that_does_not_clear_the_alert_escalates(
    faulted: FaultedCluster, prefect_api: str
) -> None:
    # A threshold no real traffic meets: the verification must fail and say so.
    faulted.config.error_rate_threshold = 1e-9
    faulted.config.verify_timeout_s = 3
    # Nobody answers the undo offered after the failed verification: do not wait a minute.
    faulted.config.approval_timeout_s = 15
    state, incident = _run(faulted, prefect_api, {"approve": True, "approver": "jane"})
    assert state.name == "Escalated"
    statuses = [t.status for t in incident.transitions]
    assert statuses[-2:] == [IncidentStatus.MITIGATED, IncidentStatus.ESCALATED]
    assert "not under" in incident.transitions[-1].note


def test_stopped_redis_is_reported_down_and_the_playbook_carries_on(
    faulted: FaultedCluster,
    prefect_api: str,
    stopped_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONCALL_REDIS_URL", stopped_redis_url)
    state, incident = _run(faulted, prefect_api, {"approve": True, "approver": "jane"})
    assert state.name == "Resolved"
    diagnosis = next(a for a in incident.actions if a.kind == "diagnosis")
    probes = {p["name"]: p for p in diagnosis.detail["probes"]}
    assert probes["redis"]["ok"] is False
    assert "refused" in probes["redis"]["detail"].lower()
    assert probes["redis"]["target"] == stopped_redis_url
    assert probes["postgresql"]["ok"] is True
