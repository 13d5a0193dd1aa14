"""Approval and guard failure modes, for every playbook that has a mitigation.

Each test runs the real playbook flow (real Prefect server, real incident store) against a
faulted sandbox, makes one safety mechanism say no, and reads back from the store and the
cluster that the run escalated and that nothing was changed.

Modes:

- **reject**: every mitigation kind the playbook may apply is marked as needing approval
  (``guard.require_approval``); a person rejects at the first pause.
- **timeout**: the same marking, ``approval_timeout_s = 2``, nobody answers.
- **budget**: ``guard.budget_per_hour = {first kind: 0}``.
- **concurrent**: another remediation holds the service's slot
  (``oncall-remediate-<service>``) while the playbook runs, ``concurrency_wait_s = 0.5``.
- **cap**: ``guard.max_replicas`` below the playbook's ``scale_to``.
- **paused**: the automation is paused for the alert's service (``oncall pause``); no
  approval is asked, the run escalates with its plan not applied.

The approval pause comes first (``PlaybookRun.mitigate``), the guards run after it inside
``apply_plan`` (allow-list, approval, the concurrency slot, the budget, then the replica cap).
So for the two playbooks whose rollback needs an approval by default, the budget and
concurrency tests have a person approve first, and the guard still refuses.

===================== ================== ====== ======= ====== ========== ==========
playbook              scenario           reject timeout budget concurrent cap
===================== ================== ====== ======= ====== ========== ==========
high-api-error-rate   bad-deploy         yes    yes     yes*   yes*       n/a (1)
high-llm-latency      llm-latency        yes    yes     yes    yes        yes (2)
weaviate-down         weaviate-down      yes    yes     yes    yes        n/a (1)
service-down          service-down       yes    yes     yes*   yes*       n/a (1)
degraded-performance  degraded           yes    yes     yes    yes        yes (3)
pod-crash-loop        crash-loop         yes    yes     yes    yes        n/a (1)
db-pool-exhausted     db-pool-exhausted  yes    yes     yes    yes        n/a (1)
high-latency          high-latency       yes    yes     yes    yes        yes (4)
high-error-rate       service-down (5)   yes    yes     yes    yes        yes (2)
minor-issue           minor              n/a (6)
===================== ================== ====== ======= ====== ========== ==========

``*`` a person approves the rollback first (it needs an approval by default).

1. The playbook never scales (rollback, switch, restart, ConfigMap fix, set env): there is
   no replica count for the cap to refuse.
2. Scaling is its second remedy, tried only when the restart did not clear the alert: the
   test makes the verification after the restart fail quickly (1 s rollout wait and
   verification timeout; for high-llm-latency also an unreachable latency threshold, since
   fresh Ollama pods are fast; for high-error-rate the release keeps crashing), so the
   restart is applied (and asserted as such) and the scale is refused.
3. ``test_seed_playbooks`` also covers this with ``scale_to`` above the default cap; here the
   cap is lowered instead.
4. High-latency scales only when the cache is warm (hit rate >= 80 %); in its own scenario
   the cache is cold and it warms it instead. The cap test runs it against the ``degraded``
   scenario (CPU saturated, cache warm), where it goes for the scale.
5. No scenario of its own; like ``test_seed_playbooks``, it runs against ``service-down``
   (a crashing release: restart and scale both reach the cluster).
6. Minor issues are documented, ticketed and watched; the playbook changes nothing in the
   cluster, so there is no approval to ask for and no guard to trip.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.high_error_rate import high_error_rate
from flows.high_latency import high_latency
from flows.naming import incident_run_name_for
from oncall.clients.kube import KubeClient
from oncall.clients.prefect_api import PrefectApi
from oncall.models import ActionKind, Alert, Incident, IncidentStatus, utcnow
from oncall.pauses import PauseRequest, Pauses
from oncall.playbooks import HighErrorRateConfig, HighLatencyConfig
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox import world as sandbox_world
from oncall_sandbox.drill_catalog import DrillPlan, plan_drill
from tests.playbooks.conftest import SCALE, Human

_G, _C = "gremlinsai", "cronos-ai"
_TIMING = (
    "approval_timeout_s",
    "approval_poll_s",
    "rollout_timeout_s",
    "verify_checks",
    "verify_window_s",
    "verify_timeout_s",
    "escalation_time_scale",
)


@dataclass(frozen=True)
class Case:
    """One playbook, the scenario it runs against, and what it may change there."""

    playbook: str  # the flow's name
    scenario: str
    kinds: tuple[str, ...]  # every mitigation kind the playbook may apply
    first: str  # the kind it plans first in this scenario
    deployments: tuple[tuple[str, str], ...]  # (namespace, name) it may change
    config_maps: tuple[tuple[str, str], ...] = ()
    services: tuple[tuple[str, str], ...] = ()
    approval_by_default: bool = False  # its first kind needs an approval by default


def _ids(case: Case) -> str:
    return case.playbook


CASES = [
    Case(
        "high-api-error-rate",
        "bad-deploy",
        ("rollback", "switch"),
        "rollback",
        ((_G, "gremlinsai-backend-blue"), (_G, "gremlinsai-backend-green")),
        services=((_G, "gremlinsai-service"),),
        approval_by_default=True,
    ),
    Case(
        "high-llm-latency",
        "llm-latency",
        ("restart", "scale", "fallback"),
        "restart",
        ((_G, "ollama"), (_G, "gremlinsai-backend-blue"), (_G, "gremlinsai-backend-green")),
    ),
    Case("weaviate-down", "weaviate-down", ("restart",), "restart", ((_G, "weaviate"),)),
    Case(
        "service-down",
        "service-down",
        ("rollback",),
        "rollback",
        ((_C, "cronos-ai"),),
        approval_by_default=True,
    ),
    Case("degraded-performance", "degraded", ("scale",), "scale", ((_C, "cronos-ai"),)),
    Case(
        "pod-crash-loop",
        "crash-loop",
        ("config", "restart"),
        "config",
        ((_C, "cronos-ai"),),
        config_maps=((_C, "cronos-ai-config"),),
    ),
    Case("db-pool-exhausted", "db-pool-exhausted", ("set_env",), "set_env", ((_C, "cronos-ai"),)),
    Case(
        "high-latency",
        "high-latency",
        ("warm_cache", "scale"),
        "warm_cache",
        ((_C, "cronos-ai"),),
    ),
    Case("high-error-rate", "service-down", ("restart", "scale"), "restart", ((_C, "cronos-ai"),)),
]
_BY_NAME = {c.playbook: c for c in CASES}

# Playbooks whose mitigation scales: the scenario that makes them reach the scale step,
# the deployment they scale, and what they apply before it.
SCALING = [
    (_BY_NAME["high-llm-latency"], (_G, "ollama"), ["restart"]),
    (_BY_NAME["degraded-performance"], (_C, "cronos-ai"), []),
    (replace(_BY_NAME["high-latency"], scenario="degraded", first="scale"), (_C, "cronos-ai"), []),
    (_BY_NAME["high-error-rate"], (_C, "cronos-ai"), ["restart"]),
]
# Playbooks run against a scenario that routes elsewhere: their flow and config class.
_OTHER_FLOWS: dict[str, tuple[Any, Any]] = {
    "high-error-rate": (high_error_rate, HighErrorRateConfig),
    "high-latency": (high_latency, HighLatencyConfig),
}


class MatrixDrill:
    """A faulted sandbox, a fresh alert from the scenario's rule, and the playbook to run."""

    def __init__(self, case: Case, sandbox: Sandbox, plan: DrillPlan, prefect_api: str) -> None:
        self.case, self.sandbox, self.prefect_api = case, sandbox, prefect_api
        self.alert = Alert.from_alertmanager(plan.rule.webhook(utcnow(), 1.0).alerts[0])
        self.kube = KubeClient(sandbox.kubeconfig_path)
        self.flow: Any = plan.playbook
        self.config: Any = plan.config
        if self.flow.name != case.playbook:
            self.flow, config_class = _OTHER_FLOWS[case.playbook]
            base: Any = plan.config
            timing = base.model_dump(include=set(_TIMING))
            self.config = config_class(service_url=base.service_url, **timing)
        assert self.flow.name == case.playbook

    def snapshot(self) -> dict[str, Any]:
        """Everything the playbook could change: deployments, ConfigMaps, Service selectors."""
        state: dict[str, Any] = {}
        for ns, name in self.case.deployments:
            dep = self.kube.deployment(ns, name)
            health = self.kube.health(ns, name)
            state[f"deployment/{ns}/{name}"] = {
                "revision": health.revision,
                "replicas": dep["spec"]["replicas"],
                "images": health.images,
                "template": dep["spec"]["template"],
            }
        for ns, name in self.case.config_maps:
            state[f"configmap/{ns}/{name}"] = self.kube.config_map(ns, name)
        for ns, name in self.case.services:
            state[f"service/{ns}/{name}"] = self.kube.service(ns, name)["spec"].get("selector")
        return state

    def run(self, answer: dict[str, Any] | None = None) -> tuple[Any, Incident]:
        """Run the playbook (a person answers its first pause with ``answer``, if given)."""
        human = None
        if answer is not None:
            human = Human(self.prefect_api, incident_run_name_for(self.alert), answer)
            human.start()
        state = self.flow(alert=self.alert, config=self.config, return_state=True)
        if human is not None:
            human.join(10)
            assert not human.is_alive(), "the person never got to answer"
            assert human.error is None, human.error
        store = IncidentStore(OncallSettings().store_url)
        return state, store.get(Incident.id_for(self.alert))


@pytest.fixture
def drill(
    request: pytest.FixtureRequest,
    oncall_home: Path,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MatrixDrill]:
    case: Case = request.param
    # The sandbox's offloaded Ollama runner recovers by itself once its load stays under
    # 8 calls/s for 30 simulated seconds (0.3 s here). Its load estimate dips that low by
    # itself: right after start-up, before the traffic has ramped up, and whenever the
    # sandbox's traffic thread is starved (see _fault_still_active). Here only replacing the
    # pod may clear the fault, so "the fault is still active" means "nobody replaced it".
    monkeypatch.setattr(sandbox_world, "_OLLAMA_RECOVERY_SECONDS", math.inf)
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario=case.scenario) as sandbox:
        plan = plan_drill(case.scenario, sandbox, SCALE, approval_timeout_s=60)
        sandbox.inject_fault()
        assert _fault_still_active(sandbox)
        d = MatrixDrill(case, sandbox, plan, prefect_api)
        try:
            yield d
        finally:
            d.kube.close()


def _fault_still_active(sandbox: Sandbox, within_s: float = 3.0) -> bool:
    """The scenario's fault shows at least once within ``within_s``.

    Load-based faults (degraded) are read from the sandbox's load estimate, which drops
    for a moment when its traffic thread is starved: a tick simulates at most 2000
    requests and drops the rest, so after a stall the load per pod reads low although the
    traffic did not change. A mitigation's fix lasts (a rollback, a restart, a scale, a
    warm cache), so a fault seen active once after the run was not fixed by it.
    """
    deadline = time.monotonic() + within_s
    while not sandbox.fault_active():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _applied(incident: Incident) -> list[str]:
    return [a.kind for a in incident.actions if not a.dry_run and "before" in a.detail]


def _escalated(state: Any, incident: Incident, kind: str) -> str:
    """The run ended Escalated right after planning a ``kind`` mitigation; returns the note."""
    assert state.name == "Escalated", (state.name, state.message)
    assert incident.status is IncidentStatus.ESCALATED
    planned = [a.kind for a in incident.actions if a.dry_run]
    assert planned and planned[-1] == f"{kind}-planned", planned
    return incident.transitions[-1].note


def _nothing_changed(drill: MatrixDrill, before: dict[str, Any], incident: Incident) -> None:
    assert _applied(incident) == []
    assert drill.snapshot() == before
    assert _fault_still_active(drill.sandbox), "the fault went away though nothing was applied"


@pytest.mark.parametrize("drill", CASES, ids=_ids, indirect=True)
def test_rejected_approval_changes_nothing(drill: MatrixDrill) -> None:
    drill.config.guard.require_approval = [ActionKind(k) for k in drill.case.kinds]
    before = drill.snapshot()
    state, incident = drill.run({"approve": False, "approver": "sam", "reason": "not now"})
    note = _escalated(state, incident, drill.case.first)
    assert note == f"{drill.case.first} rejected: nothing changed"
    assert [(a.decision, a.approver) for a in incident.approvals] == [("rejected", "sam")]
    assert incident.acknowledged_by == "sam"
    _nothing_changed(drill, before, incident)


@pytest.mark.parametrize("drill", CASES, ids=_ids, indirect=True)
def test_approval_timeout_changes_nothing(drill: MatrixDrill) -> None:
    drill.config.guard.require_approval = [ActionKind(k) for k in drill.case.kinds]
    drill.config.approval_timeout_s = 2
    before = drill.snapshot()
    state, incident = drill.run()
    note = _escalated(state, incident, drill.case.first)
    assert note == f"{drill.case.first} timed_out: nothing changed"
    assert [a.decision for a in incident.approvals] == ["timed_out"]
    assert incident.acknowledged_by is None
    _nothing_changed(drill, before, incident)


def _approve_if_needed(drill: MatrixDrill) -> dict[str, Any] | None:
    return {"approve": True, "approver": "jane"} if drill.case.approval_by_default else None


def _approvals_expected(drill: MatrixDrill) -> list[str]:
    # The pause comes before the guards: the person approves, then the guard refuses.
    return ["approved"] if drill.case.approval_by_default else []


@pytest.mark.parametrize("drill", CASES, ids=_ids, indirect=True)
def test_spent_budget_escalates_and_changes_nothing(drill: MatrixDrill) -> None:
    first = drill.case.first
    drill.config.guard.budget_per_hour = {ActionKind(first): 0}
    before = drill.snapshot()
    state, incident = drill.run(_approve_if_needed(drill))
    note = _escalated(state, incident, first)
    assert f"{first} refused by a guard: budget spent: 0 {first} action(s)" in note
    assert [a.decision for a in incident.approvals] == _approvals_expected(drill)
    _nothing_changed(drill, before, incident)


@pytest.mark.parametrize("drill", CASES, ids=_ids, indirect=True)
def test_concurrent_remediation_on_the_same_service_is_refused(
    drill: MatrixDrill, prefect_api: str
) -> None:
    first = drill.case.first
    drill.config.guard.concurrency_wait_s = 0.5
    slot = f"oncall-remediate-{drill.alert.service}"
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_remediation() -> None:
        try:
            with PrefectApi(prefect_api).exclusive(slot, 5):
                holding.set()
                release.wait(60)
        except BaseException as exc:
            errors.append(exc)
            holding.set()

    holder = threading.Thread(target=other_remediation, daemon=True)
    before = drill.snapshot()
    holder.start()
    try:
        assert holding.wait(30) and not errors, errors
        state, incident = drill.run(_approve_if_needed(drill))
    finally:
        release.set()
        holder.join(10)
    assert not errors, errors
    note = _escalated(state, incident, first)
    assert f"{first} refused by a guard" in note
    assert "refusing to act concurrently" in note
    assert [a.decision for a in incident.approvals] == _approvals_expected(drill)
    _nothing_changed(drill, before, incident)
    # The refused run left the slot as it found it: free once the other one is done.
    with PrefectApi(prefect_api).exclusive(slot, 2):
        pass


@pytest.mark.parametrize(
    ("drill", "scaled", "applied_before"),
    [pytest.param(c, s, a, id=c.playbook) for c, s, a in SCALING],
    indirect=["drill"],
)
def test_scale_above_the_cap_is_refused(
    drill: MatrixDrill, scaled: tuple[str, str], applied_before: list[str]
) -> None:
    config = drill.config
    cap = config.scale_to - 1
    config.guard.max_replicas = cap
    if applied_before:
        # Make the first remedy (restart) not clear the alert, quickly, so it goes on to scale.
        config.verify_timeout_s = 1
        config.rollout_timeout_s = 1
        if drill.case.playbook == "high-llm-latency":
            config.threshold_s = 0.001
    replicas = drill.kube.health(*scaled).replicas
    assert replicas <= cap, "the cap must be one the deployment is within before the scale"
    state, incident = drill.run()
    note = _escalated(state, incident, "scale")
    assert f"scale refused by a guard: {config.scale_to} replicas is above the cap of {cap}" in note
    assert _applied(incident) == applied_before
    assert drill.kube.health(*scaled).replicas == replicas
    assert drill.kube.deployment(*scaled)["spec"]["replicas"] == replicas


@pytest.mark.parametrize("drill", CASES, ids=_ids, indirect=True)
def test_paused_automation_diagnoses_escalates_and_changes_nothing(drill: MatrixDrill) -> None:
    """`oncall pause SERVICE`: no approval is asked, the plan is kept but not applied."""
    store = IncidentStore(OncallSettings().store_url)
    service = drill.alert.service
    pause = Pauses(store).pause(
        PauseRequest(service=service, duration=timedelta(hours=1), reason="migration", by="lee")
    )
    before = drill.snapshot()
    try:
        state, incident = drill.run()
    finally:
        Pauses(store).resume(service, "test")
    note = _escalated(state, incident, drill.case.first)
    assert note == f"{drill.case.first} not applied: {pause.describe()}"
    assert incident.approvals == []
    _nothing_changed(drill, before, incident)
