"""Every seed playbook against its sandbox scenario: healed by the seed's remedy, and guarded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.naming import incident_run_name_for
from oncall.clients.kube import KubeClient
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import SCENARIOS, Sandbox
from oncall_sandbox.drill_catalog import DrillPlan, plan_drill
from tests.playbooks.conftest import SCALE, Human, quick_high_error_rate_config

# What each seed section prescribes, as the kinds of action the playbook applies.
REMEDY = {
    "bad-deploy": ["rollback"],
    "llm-latency": ["restart"],
    "weaviate-down": ["restart"],
    "service-down": ["rollback"],
    "degraded": ["scale"],
    "crash-loop": ["config", "restart"],
    "db-pool-exhausted": ["set_env"],
    "high-latency": ["warm_cache"],
    "minor": [],
}
NEEDS_APPROVAL = {"bad-deploy", "service-down"}


class Drill:
    """A started, faulted sandbox and the playbook that should heal it."""

    def __init__(self, sandbox: Sandbox, plan: DrillPlan) -> None:
        self.sandbox, self.plan = sandbox, plan
        self.alert = Alert.from_alertmanager(plan.rule.webhook(utcnow(), 1.0).alerts[0])
        self.kube = KubeClient(sandbox.kubeconfig_path)

    def run(self, prefect_api: str, answer: dict[str, Any] | None = None) -> tuple[Any, Incident]:
        human = None
        if answer is not None:
            human = Human(prefect_api, incident_run_name_for(self.alert), answer)
            human.start()
        state = self.plan.playbook(alert=self.alert, config=self.plan.config, return_state=True)
        if human is not None:
            human.join(5)
            assert human.error is None, human.error
        store = IncidentStore(OncallSettings().store_url)
        return state, store.get(Incident.id_for(self.alert))


@pytest.fixture
def drill(request: pytest.FixtureRequest, oncall_home: Path, prefect_api: str) -> Iterator[Drill]:
    scenario: str = request.param
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario=scenario) as sandbox:
        plan = plan_drill(scenario, sandbox, SCALE, approval_timeout_s=60)
        sandbox.inject_fault()
        d = Drill(sandbox, plan)
        yield d
        d.kube.close()


def _applied(incident: Incident) -> list[str]:
    return [a.kind for a in incident.actions if not a.dry_run and "before" in a.detail]


@pytest.mark.parametrize("drill", list(SCENARIOS), indirect=True)
def test_playbook_heals_its_scenario_with_the_seed_remedy(drill: Drill, prefect_api: str) -> None:
    name = drill.plan.scenario.name
    answer = {"approve": True, "approver": "jane"} if name in NEEDS_APPROVAL else None
    state, incident = drill.run(prefect_api, answer)
    assert state.name == "Resolved", state.message
    assert incident.status is IncidentStatus.RESOLVED
    assert not drill.sandbox.fault_active(), "the sandbox still shows the fault"
    assert _applied(incident) == REMEDY[name]
    statuses = [t.status for t in incident.transitions]
    assert statuses[:2] == [IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED]
    if REMEDY[name]:
        assert IncidentStatus.MITIGATED in statuses
    assert any(a.kind in ("diagnosis", "ticket") for a in incident.actions)
    if name == "crash-loop":
        # The seed alert names `service: cronos-ai`: Service -> pods -> ReplicaSet -> owner.
        assert incident.subject is not None
        assert incident.subject.ref == "cronos-ai/deployment/cronos-ai"
        assert incident.subject.chain[0] == "service/cronos-ai"
        assert incident.subject.catalog_service == "cronos-ai"


@pytest.mark.parametrize("drill", ["service-down"], indirect=True)
def test_service_down_rejected_rollback_changes_nothing(drill: Drill, prefect_api: str) -> None:
    before = drill.kube.health("cronos-ai", "cronos-ai")
    state, incident = drill.run(prefect_api, {"approve": False, "approver": "sam", "reason": "no"})
    assert state.name == "Escalated"
    after = drill.kube.health("cronos-ai", "cronos-ai")
    assert (after.revision, after.images) == (before.revision, before.images)
    assert incident.approvals[0].decision == "rejected"
    assert _applied(incident) == []
    assert drill.sandbox.fault_active()


@pytest.mark.parametrize("drill", ["degraded"], indirect=True)
def test_scale_above_the_cap_is_refused(drill: Drill, prefect_api: str) -> None:
    drill.plan.config.scale_to = 20  # type: ignore[attr-defined]
    state, incident = drill.run(prefect_api)
    assert state.name == "Escalated"
    assert "above the cap" in incident.transitions[-1].note
    assert drill.kube.health("cronos-ai", "cronos-ai").replicas == 3
    assert _applied(incident) == []


@pytest.mark.parametrize("drill", ["db-pool-exhausted"], indirect=True)
def test_database_down_escalates_instead_of_raising_the_pool(
    drill: Drill, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("ONCALL_POSTGRES_DSN", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    before = drill.kube.health("cronos-ai", "cronos-ai").revision
    state, incident = drill.run(prefect_api)
    assert state.name == "Escalated"
    assert "database itself is down" in incident.transitions[-1].note
    assert drill.kube.health("cronos-ai", "cronos-ai").revision == before


@pytest.mark.parametrize("drill", ["crash-loop"], indirect=True)
def test_a_fix_that_does_not_verify_escalates_and_offers_its_undo(
    drill: Drill, prefect_api: str
) -> None:
    config: Any = drill.plan.config
    config.known_good = {"CACHE_TTL_SECONDS": "not-a-number"}  # a wrong "fix"
    config.verify_timeout_s = 4
    config.approval_timeout_s = 2
    state, incident = drill.run(prefect_api)
    assert state.name == "Escalated"
    assert "did not clear the alert" in incident.transitions[-1].note
    # The undo was offered through the approval form and nobody answered in time.
    assert [a.decision for a in incident.approvals] == ["timed_out"]
    assert drill.sandbox.fault_active()


@pytest.mark.parametrize("drill", ["weaviate-down"], indirect=True)
def test_marked_mitigation_waits_for_approval_and_times_out(drill: Drill, prefect_api: str) -> None:
    config: Any = drill.plan.config
    config.guard.require_approval = ["restart"]
    config.approval_timeout_s = 2
    before = drill.kube.health("gremlinsai", "weaviate").revision
    state, incident = drill.run(prefect_api)
    assert state.name == "Escalated"
    assert incident.approvals[0].decision == "timed_out"
    assert drill.kube.health("gremlinsai", "weaviate").revision == before


@pytest.mark.parametrize("drill", ["service-down"], indirect=True)
def test_high_error_rate_restarts_then_scales_then_escalates_when_neither_helps(
    drill: Drill, prefect_api: str
) -> None:
    # A crashing release: the CRONOS "High Error Rate" remedies (restart, scale) cannot
    # clear it, and the playbook must say so rather than loop.
    from flows.high_error_rate import high_error_rate

    base: Any = drill.plan.config
    config = quick_high_error_rate_config(
        base.service_url, approval_timeout_s=2, escalation_time_scale=SCALE
    )
    state = high_error_rate(alert=drill.alert, config=config, return_state=True)
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(drill.alert))
    assert state.name == "Escalated"
    assert _applied(incident) == ["restart", "scale"]
    assert drill.kube.health("cronos-ai", "cronos-ai").replicas == config.scale_to
    assert "did not clear the alert" in incident.transitions[-1].note
