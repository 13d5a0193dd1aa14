"""Every playbook when its mitigation does not verify, and when a dependency is down.

Each test runs the real playbook flow (real Prefect server, real sandbox cluster faulted with
the playbook's scenario, real PostgreSQL, a real Redis) and reads the outcome back from the
incident store and the sandbox.

A. "a mitigation that fails verify" (``test_mitigation_that_does_not_verify_escalates``): the
mitigation is applied, then the world relapses (a thread re-applies the fault every 0.2 s, for
Ollama every 0.05 s, from the moment the incident's MITIGATED transition is in the store; for
pod-crash-loop from its second one, the restart), so the alert does not clear:
Escalated, "did not clear the alert", MITIGATED before ESCALATED, nothing but the seed's remedy
applied, and where the flow passes ``undo=`` to ``run.finish`` the undo offered through the
approval form (nobody answers: "timed_out", recorded after the escalation).

====================  ======================  =================================================
playbook              scenario                how verification is made to fail
====================  ======================  =================================================
high-api-error-rate   bad-deploy              CD re-deploys 1.5.0 after the approved rollback
high-llm-latency      llm-latency             every Ollama pod (new ones too) offloads to CPU
                                              again; no fallback deployments configured (the
                                              fallback provider is outside the reach of any
                                              Ollama relapse)
weaviate-down         weaviate-down           every Weaviate pod, the restarted ones too, is
                                              poisoned (node name conflict)
service-down          service-down            CD re-deploys 2.5.0 after the approved rollback
degraded-performance  degraded                traffic climbs on to 72 req/s (a relapse of the
                                              same 45 req/s surge is absorbed by 5 replicas)
pod-crash-loop        crash-loop              after the restart, config sync puts the broken
                                              ConfigMap back and rolls the pods
db-pool-exhausted     db-pool-exhausted       the stuck export job starts again and the pool
                                              is raised to 20 only (its leak caps at 20 per
                                              pod: the seed's 50 absorbs any relapse)
high-latency          high-latency            Redis loses its keys again after the warm-up
high-error-rate       db-pool-exhausted (its  the stuck export job starts again: neither the
                      alert renamed           restart nor the scale to 5 clears the 5xx rate
                      CronosHighErrorRate)
minor-issue           minor                   no mitigation: instead the error rate grows
                                              (traffic saturates the pods) while it monitors,
                                              and the seed's "escalate if it grows" must fire
                                              (``test_minor_issue_escalates_when_it_grows``)
====================  ======================  =================================================

B. "a dependency down" (``test_redis_down_is_reported_and_the_playbook_carries_on``): every
playbook runs with ONCALL_REDIS_URL pointing at a real Redis that was started and shut down.
The run must reach its normal outcome (Resolved, with a Human approving where the playbook
needs one; degraded-performance deliberately escalates when a dependency is down, and that is
asserted as such), and the redis probe must be recorded on an action with ok False, the target
and a detail naming host:port, and "redis DOWN" in the diagnosis findings. Every
playbook but minor-issue records the probes in its diagnosis action
(``diagnosis.detail["probes"]``); minor-issue (CRONOS P3: document, ticket, monitor) checks
no dependencies, and the test asserts that a dead Redis does not get in its way.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from flows.high_error_rate import high_error_rate
from flows.naming import incident_run_name_for
from oncall.clients.kube import KubeClient
from oncall.errors import NotFoundError
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.playbooks import HighErrorRateConfig
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.drill_catalog import plan_drill
from oncall_sandbox.faults import FAULTS
from tests.playbooks.conftest import SCALE, Human

APPROVE = {"approve": True, "approver": "jane", "reason": "drill"}
RELAPSE_EVERY_S = 0.2
VERIFY_TIMEOUT_S = 5.0  # a failing verification gives up after this long
ROLLOUT_TIMEOUT_S = 3.0  # crash-looping pods never complete a rollout: do not wait 15 s
# 1.6 x the degraded scenario's 45 req/s: 14.4 req/s per pod on 5 replicas, above the
# 12 req/s a pod serves at its CPU limit (cronos.CPU_CAPACITY_RPS).
SURGE_RPS = 72.0


# --- the world relapsing ------------------------------------------------------------------


def _reinject(scenario: str) -> Callable[[Sandbox], None]:
    """The scenario's own fault, applied again (its inject is idempotent)."""
    return FAULTS[scenario].inject


def _gpu_node_failing(sandbox: Sandbox) -> None:
    """Ollama's runners offloaded to CPU, and no amount of calm brings them back."""
    sandbox.world.ollama_recovers = False
    FAULTS["llm-latency"].inject(sandbox)


def _surge(sandbox: Sandbox) -> None:
    """Traffic to cronos-ai keeps climbing, past what the scaled-up deployment serves."""
    service = sandbox.simulated("cronos-ai", "cronos-ai")
    assert service is not None
    service.requests_per_second = SURGE_RPS


def _config_resynced(sandbox: Sandbox) -> None:
    """A config sync puts CACHE_TTL_SECONDS=30s back and, as the chart's checksum
    annotation would, rolls the pods that are running (they then read the broken value)."""
    FAULTS["crash-loop"].inject(sandbox)
    service = sandbox.simulated("cronos-ai", "cronos-ai")
    if service is not None and service.backends():
        kube = KubeClient(sandbox.kubeconfig_path)
        try:
            kube.restart("cronos-ai", "cronos-ai", utcnow())
        finally:
            kube.close()


class Relapse(threading.Thread):
    """Re-applies a fault every `every_s` once the incident has been mitigated."""

    def __init__(
        self,
        sandbox: Sandbox,
        incident_id: str,
        inject: Callable[[Sandbox], None],
        after_mitigations: int,
        every_s: float,
    ) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.incident_id, self.inject = sandbox, incident_id, inject
        self.after_mitigations, self.every_s = after_mitigations, every_s
        self.store = IncidentStore(OncallSettings().store_url)
        self.stopping = threading.Event()
        self.injected = 0
        self.first_at: datetime | None = None
        self.error: Exception | None = None

    def _mitigations(self) -> int:
        try:
            incident = self.store.get(self.incident_id)
        except NotFoundError:
            return 0
        return sum(1 for t in incident.transitions if t.status is IncidentStatus.MITIGATED)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.injected == 0 and self._mitigations() < self.after_mitigations:
                    self.stopping.wait(0.05)
                    continue
                self.first_at = self.first_at or utcnow()
                self.inject(self.sandbox)
                self.injected += 1
                self.stopping.wait(self.every_s)
        except Exception as exc:
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


# --- the matrix -----------------------------------------------------------------------------


def _keep(config: Any) -> None:
    """No change to the drill configuration."""


def _no_fallback(config: Any) -> None:
    config.backend_deployments = []


def _small_pool(config: Any) -> None:
    config.pool_size = 20


@dataclass(frozen=True)
class Playbook:
    """One playbook, the scenario it is drilled with, and what each mode expects of it."""

    name: str
    scenario: str
    heal: tuple[str, ...]  # the seed's remedy: action kinds applied when all goes well
    relapse: Callable[[Sandbox], None]
    approval: bool = False  # the remedy itself needs a Human's approval
    undo: bool = False  # the flow passes undo= to run.finish
    fails_with: tuple[str, ...] | None = None  # kinds applied before escalating (None: heal)
    relapse_after: int = 1  # MITIGATED transitions before the relapse starts
    relapse_every: float = RELAPSE_EVERY_S
    tune: Callable[[Any], None] = _keep  # mode A configuration change
    probes: bool = True  # False: the seed section checks no dependencies
    redis_down: Literal["Resolved", "Escalated"] = "Resolved"
    redis_down_scenario: str = ""  # mode B scenario when not `scenario`


PLAYBOOKS = [
    Playbook(
        "high-api-error-rate",
        "bad-deploy",
        ("rollback",),
        _reinject("bad-deploy"),
        approval=True,
        undo=True,
    ),
    Playbook(
        "high-llm-latency",
        "llm-latency",
        ("restart",),
        _gpu_node_failing,
        fails_with=("restart", "scale"),
        # A runner the sandbox offloads recovers once it carries < 8 generations/s for 30
        # simulated seconds (0.3 s here), which the scale-up brings about. The relapse is a
        # cause that persists whatever the load (a failing GPU node): no recovery, and every
        # runner, the new ones too, offloaded again. (Re-offloading every 0.05 s alone raced
        # the sandbox's recovery on each tick and sometimes let the scale-up verify.)
        relapse_every=0.05,
        tune=_no_fallback,
    ),
    Playbook(
        "weaviate-down",
        "weaviate-down",
        ("restart",),
        _reinject("weaviate-down"),
    ),
    Playbook(
        "service-down",
        "service-down",
        ("rollback",),
        _reinject("service-down"),
        approval=True,
        undo=True,
    ),
    Playbook(
        "degraded-performance",
        "degraded",
        ("scale",),
        _surge,
        undo=True,
        redis_down="Escalated",
    ),
    Playbook(
        "pod-crash-loop",
        "crash-loop",
        ("config", "restart"),
        _config_resynced,
        undo=True,
        relapse_after=2,
    ),
    Playbook(
        "db-pool-exhausted",
        "db-pool-exhausted",
        ("set_env",),
        _reinject("db-pool-exhausted"),
        undo=True,
        tune=_small_pool,
    ),
    Playbook(
        "high-latency",
        "high-latency",
        ("warm_cache",),
        _reinject("high-latency"),
    ),
    Playbook(
        "high-error-rate",
        "db-pool-exhausted",
        ("restart", "scale"),
        _reinject("db-pool-exhausted"),
        redis_down_scenario="degraded",
    ),
]
MINOR = Playbook("minor-issue", "minor", (), _surge, probes=False)


def _param(playbook: Playbook) -> Any:
    return pytest.param(playbook, id=playbook.name)


# --- running a drill ------------------------------------------------------------------------


class Drill:
    """A started, faulted sandbox and the playbook flow, configuration and alert for it."""

    def __init__(self, sandbox: Sandbox, playbook: Playbook, approval_timeout_s: int) -> None:
        self.sandbox, self.playbook = sandbox, playbook
        assert sandbox.scenario_info is not None
        plan = plan_drill(sandbox.scenario_info.name, sandbox, SCALE, approval_timeout_s)
        self.flow: Any = plan.playbook
        self.config: Any = plan.config
        rule = plan.rule
        if playbook.name == "high-error-rate":
            # The CRONOS "High Error Rate" section has no scenario of its own. A runs it on
            # db-pool-exhausted (~60 % 503/504 from a leak neither a restart nor a scale-up
            # stops once the leaking job starts again), B on degraded (5-10 % 503/504 from
            # saturated CPU: the restart does not clear it, the scale-up does).
            self.flow = high_error_rate
            self.config = HighErrorRateConfig.model_validate(plan.config.model_dump())
            rule = dataclasses.replace(rule, name="CronosHighErrorRate")
        self.alert = Alert.from_alertmanager(rule.webhook(utcnow(), 1.0).alerts[0])
        self.incident_id = Incident.id_for(self.alert)
        self.kube = KubeClient(sandbox.kubeconfig_path)

    def run(self, prefect_api: str, approve: bool) -> tuple[Any, Incident]:
        human = None
        if approve:
            human = Human(prefect_api, incident_run_name_for(self.alert), APPROVE)
            human.start()
        state = self.flow(alert=self.alert, config=self.config, return_state=True)
        if human is not None:
            human.join(5)
            assert human.error is None, human.error
        return state, IncidentStore(OncallSettings().store_url).get(self.incident_id)


@contextmanager
def _drill(
    home: Path, playbook: Playbook, approval_timeout_s: int, scenario: str = ""
) -> Iterator[Drill]:
    with Sandbox(home=home, time_scale=SCALE, scenario=scenario or playbook.scenario) as sandbox:
        drill = Drill(sandbox, playbook, approval_timeout_s)
        sandbox.inject_fault()
        try:
            yield drill
        finally:
            drill.kube.close()


def _eventually(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _applied(incident: Incident) -> list[str]:
    return [a.kind for a in incident.actions if not a.dry_run and "before" in a.detail]


def _statuses(incident: Incident) -> list[IncidentStatus]:
    return [t.status for t in incident.transitions]


# --- A: a mitigation that fails verify -----------------------------------------------------


@pytest.mark.parametrize("playbook", [_param(p) for p in PLAYBOOKS])
def test_mitigation_that_does_not_verify_escalates(
    playbook: Playbook, oncall_home: Path, prefect_api: str
) -> None:
    # Long enough for the Human to answer the remedy's approval; the undo's then times out.
    approval_timeout_s = 4 if playbook.approval else 2
    with _drill(oncall_home, playbook, approval_timeout_s) as drill:
        drill.config.verify_timeout_s = VERIFY_TIMEOUT_S
        drill.config.rollout_timeout_s = ROLLOUT_TIMEOUT_S
        playbook.tune(drill.config)
        relapse = Relapse(
            drill.sandbox,
            drill.incident_id,
            playbook.relapse,
            playbook.relapse_after,
            playbook.relapse_every,
        )
        relapse.start()
        try:
            state, incident = drill.run(prefect_api, approve=playbook.approval)
            relapsed = _eventually(drill.sandbox.fault_active, 2.0)
        finally:
            relapse.stop()

    assert relapse.error is None, relapse.error
    assert relapse.injected > 0, "the world never relapsed: no MITIGATED transition was seen"
    assert state.name == "Escalated", state.message
    assert incident.status is IncidentStatus.ESCALATED
    assert relapsed, "the sandbox no longer shows the fault: the relapse did not take"
    escalated = incident.transitions[-1]
    assert "did not clear the alert" in escalated.note
    statuses = _statuses(incident)
    assert statuses[:2] == [IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED]
    assert statuses.count(IncidentStatus.ESCALATED) == 1
    assert IncidentStatus.MITIGATED in statuses[:-1]
    assert IncidentStatus.RESOLVED not in statuses
    mitigated = [t for t in incident.transitions if t.status is IncidentStatus.MITIGATED]
    # The relapse came after the mitigation it undoes, and before the verdict.
    assert relapse.first_at is not None
    assert mitigated[playbook.relapse_after - 1].at <= relapse.first_at <= escalated.at
    # The remedy was applied (and nothing else: no undo without an approval).
    fails_with = playbook.fails_with if playbook.fails_with is not None else playbook.heal
    assert _applied(incident) == list(fails_with)

    expected = ["approved"] if playbook.approval else []
    expected += ["timed_out"] if playbook.undo else []
    assert [a.decision for a in incident.approvals] == expected
    if playbook.approval:
        assert incident.approvals[0].approver == "jane"
        assert incident.approvals[0].at <= mitigated[0].at
    if playbook.undo:
        # Offered after the escalation, through the approval form; nobody answered.
        undo = incident.approvals[-1]
        assert undo.at >= escalated.at
        assert undo.approver == "(nobody)"


def test_minor_issue_escalates_when_it_grows(oncall_home: Path, prefect_api: str) -> None:
    """Seed P3: "monitor for escalation": the error rate grows past `grows_above` -> Escalated."""
    with _drill(oncall_home, MINOR, approval_timeout_s=2) as drill:
        store = IncidentStore(OncallSettings().store_url)
        grown_at: list[datetime] = []

        def grow_once_ticketed() -> None:
            # Once the P3 is documented and ticketed, traffic saturates the pods: CPU-bound
            # 503/504 on top of the flaky reports API (~9 % of requests fail).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if any(a.kind == "ticket" for a in store.get(drill.incident_id).actions):
                        break
                except NotFoundError:
                    pass
                time.sleep(0.05)
            grown_at.append(utcnow())
            _surge(drill.sandbox)

        grower = threading.Thread(target=grow_once_ticketed, daemon=True)
        grower.start()
        state, incident = drill.run(prefect_api, approve=False)
        grower.join(5)

    assert state.name == "Escalated", state.message
    assert incident.status is IncidentStatus.ESCALATED
    assert grown_at, "the error rate was never made to grow"
    escalated = incident.transitions[-1]
    assert "no longer a P3" in escalated.note
    assert escalated.at >= grown_at[0]  # it escalated because it grew, not before
    rate = float(escalated.note.split("grew to ")[1].split("%")[0]) / 100
    assert rate >= drill.config.grows_above
    assert IncidentStatus.MITIGATED not in _statuses(incident)
    assert [a.kind for a in incident.actions if a.kind == "ticket"] == ["ticket"]
    assert _applied(incident) == []
    assert incident.approvals == []


# --- B: a dependency down ------------------------------------------------------------------


def _findings(incident: Incident) -> str:
    diagnosis = [a for a in incident.actions if a.kind == "diagnosis"]
    assert diagnosis, "no diagnosis action"
    return " ".join(str(a.detail.get("findings", "")) for a in diagnosis)


def _recorded_probe(incident: Incident, name: str) -> dict[str, Any]:
    for action in incident.actions:
        probes = action.detail.get("probes")
        for probe in probes if isinstance(probes, list) else []:
            if isinstance(probe, dict) and probe.get("name") == name:
                return probe
    kinds = {a.kind: sorted(a.detail) for a in incident.actions}
    raise AssertionError(f"no action of {incident.playbook} records the {name} probe: {kinds}")


@pytest.mark.parametrize("playbook", [_param(p) for p in [*PLAYBOOKS, MINOR]])
def test_redis_down_is_reported_and_the_playbook_carries_on(
    playbook: Playbook,
    oncall_home: Path,
    prefect_api: str,
    stopped_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONCALL_REDIS_URL", stopped_redis_url)
    with _drill(oncall_home, playbook, 30, playbook.redis_down_scenario) as drill:
        if playbook.name == "high-error-rate":
            drill.config.verify_timeout_s = 6.0  # the restart cannot clear it; the scale does
        state, incident = drill.run(prefect_api, approve=playbook.approval)
        healed = not drill.sandbox.fault_active()
        replicas = drill.kube.health("cronos-ai", "cronos-ai").replicas

    # A dead dependency never crashes the run: it reaches the playbook's normal outcome.
    assert state.name == playbook.redis_down, state.message
    if playbook.redis_down == "Resolved":
        assert incident.status is IncidentStatus.RESOLVED
        assert healed, "Resolved, but the sandbox still shows the fault"
        assert _applied(incident) == list(playbook.heal)
        if playbook.approval:
            assert [(a.decision, a.approver) for a in incident.approvals] == [("approved", "jane")]
    else:
        # degraded-performance: "dependencies down: scaling will not help" -> a human.
        assert "dependencies down (redis)" in incident.transitions[-1].note
        assert _applied(incident) == []
        assert replicas == 3

    if not playbook.probes:
        # CRONOS P3 (document, ticket, monitor) checks no dependencies: a dead Redis must
        # simply not get in its way.
        assert not any("probes" in a.detail for a in incident.actions)
        return
    # The dead dependency is reported.
    port = stopped_redis_url.rsplit(":", 1)[1].split("/")[0]
    assert "redis DOWN" in _findings(incident)
    if playbook.name == "weaviate-down":
        assert "weaviate DOWN" in _findings(incident)  # its own dependency, the fault
    redis = _recorded_probe(incident, "redis")
    assert redis["ok"] is False
    assert redis["target"] == stopped_redis_url
    assert f"127.0.0.1:{port}" in redis["detail"], redis["detail"]
    assert "refused" in redis["detail"].lower(), redis["detail"]
    assert _recorded_probe(incident, "postgresql")["ok"] is True
