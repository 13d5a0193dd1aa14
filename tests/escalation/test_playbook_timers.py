"""Every playbook's own escalation timers: its ladder, fired after a restart, stopped by an ack.

tests/escalation/test_timers.py proves the mechanism with a hand-scheduled run (and that a
cancelled timer stays silent past its due time). Here every playbook opens its incident
itself, against its sandbox scenario, while no worker runs; one test covers them all, so
that the waits for the timers overlap instead of adding up:

1. ladder: the escalation runs each playbook scheduled on the Prefect server (tag
   ``incident:<id>``) are the playbook's ladder: one per rung, due at incident opened +
   minutes x ``escalation_time_scale``, the rung's role in the parameters, all Scheduled;
2. restart: every playbook ends ``Escalated`` with no human while no worker runs; an
   ``oncall worker`` started afterwards fires each first rung once it is due (the CRONOS
   ones are overdue by then): the incident gets the page (kind ``page``, target the role,
   step 1) and the run ends ``Paged``;
3. ack: right after its first page, ``oncall ack <id> --by jane`` reports the incident's
   remaining rungs cancelled, and they are CANCELLED, before any of them came due.

The ladders are written out here, not read from the code under test: GremlinsAI seed
15 min secondary, 30 min escalation_manager, 60 min vp_engineering; CRONOS SLA table
response target -> secondary, resolution target -> engineering_manager (P1 15 min / 4 h,
P2 30 min / 8 h, P3 2 h / 24 h).

| playbook             | scenario          | ladder (min)    | 1 ladder | 2 restart | 3 ack |
|----------------------|-------------------|-----------------|----------|-----------|-------|
| service-down         | service-down      | P1 SLA 15/240   | yes      | yes       | yes   |
| high-error-rate      | service-down      | P1 SLA 15/240   | yes      | yes       | yes   |
| db-pool-exhausted    | db-pool-exhausted | P1 SLA 15/240   | yes      | yes       | yes   |
| degraded-performance | degraded          | P2 SLA 30/480   | yes      | yes       | yes   |
| pod-crash-loop       | crash-loop        | P2 SLA 30/480   | yes      | yes       | yes   |
| high-latency         | high-latency      | P2 SLA 30/480   | yes      | yes       | yes   |
| minor-issue          | minor             | P3 SLA 120/1440 | yes      | yes       | yes   |
| high-api-error-rate  | bad-deploy        | seed 15/30/60   | yes      | yes       | yes   |
| high-llm-latency     | llm-latency       | seed 15/30/60   | yes      | yes       | yes   |
| weaviate-down        | weaviate-down     | seed 15/30/60   | yes      | yes       | yes   |
| default-triage       | (empty cluster)   | seed 15/30/60   | yes      | yes       | yes   |

Each escalates at once, with no human and no approval pause: the budget per hour of its
first mitigation kind is 0 (rollback for high-api-error-rate and service-down, which then
need no approval; restart for high-llm-latency, weaviate-down and high-error-rate; set_env
for db-pool-exhausted; scale for degraded-performance; config for pod-crash-loop;
warm_cache for high-latency; the next kinds too where there are any); minor-issue watches
for 0.1 s, too short for a streak of healthy windows ("still intermittent"); default-triage
escalates an unknown alert as it is.

Time scale: the first rung is due ``FIRST_RUNG_S`` after each incident opened. A CRONOS
second rung comes 12-16 first rungs later, so 20 s is plenty. The seed's second rung comes
one first rung after the first, and the other playbooks' runs, the worker restart, the
pages and the acks must fit before it: those playbooks open first, their first rung 180 s
out, and the CRONOS ones open during that wait (their timers are overdue by the restart).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.playbooks import PlaybookConfig
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.drill_catalog import plan_drill
from tasks.escalation import ESCALATION_DEPLOYMENT
from tests.escalation.conftest import ONCALL, Worker, wait_for
from tests.playbooks.conftest import quick_high_error_rate_config

SANDBOX_SCALE = 0.01  # the drill clock, as in the playbook tests

Ladder = list[tuple[float, str]]  # (minutes after the incident opened, role paged)

SEED: Ladder = [(15, "secondary"), (30, "escalation_manager"), (60, "vp_engineering")]
SLA_P1: Ladder = [(15, "secondary"), (4 * 60, "engineering_manager")]
SLA_P2: Ladder = [(30, "secondary"), (8 * 60, "engineering_manager")]
SLA_P3: Ladder = [(2 * 60, "secondary"), (24 * 60, "engineering_manager")]
# Seconds from an incident's opening to its first rung: (CRONOS SLA ladders, seed ladder).
FIRST_RUNG_S = (20.0, 180.0)


@dataclass(frozen=True)
class Case:
    """One playbook: the scenario it runs against, the ladder it must schedule."""

    playbook: str
    scenario: str | None  # None: an empty cluster (default triage's unknown alert)
    ladder: Ladder
    escalate_at_once: Callable[[Any], None]  # makes the config escalate with no human

    @property
    def scale(self) -> float:
        """``escalation_time_scale`` that puts the first rung ``FIRST_RUNG_S`` out."""
        first_s = FIRST_RUNG_S[self.ladder is SEED]
        return first_s / (self.ladder[0][0] * 60)


def _budget_zero(*kinds: str) -> Callable[[Any], None]:
    """No action of these kinds left this hour, and no approval pause before them."""

    def configure(config: Any) -> None:
        config.guard.budget_per_hour = {**config.guard.budget_per_hour, **dict.fromkeys(kinds, 0)}
        config.guard.require_approval = []

    return configure


def _short_monitor(config: Any) -> None:
    config.monitor_s = 0.1  # one sample, never a streak of healthy windows: escalates


def _as_is(config: Any) -> None:
    pass


CASES = [
    # The seed ladder's second rung is only one first rung after the first, so its first
    # rung is far out (FIRST_RUNG_S): these open first, and the others open while they wait.
    Case("high-api-error-rate", "bad-deploy", SEED, _budget_zero("rollback")),
    Case("high-llm-latency", "llm-latency", SEED, _budget_zero("restart")),
    Case("weaviate-down", "weaviate-down", SEED, _budget_zero("restart")),
    Case("default-triage", None, SEED, _as_is),
    Case("service-down", "service-down", SLA_P1, _budget_zero("rollback")),
    Case("high-error-rate", "service-down", SLA_P1, _budget_zero("restart", "scale")),
    Case("db-pool-exhausted", "db-pool-exhausted", SLA_P1, _budget_zero("set_env")),
    Case("degraded-performance", "degraded", SLA_P2, _budget_zero("scale")),
    Case("pod-crash-loop", "crash-loop", SLA_P2, _budget_zero("config", "restart")),
    Case("high-latency", "high-latency", SLA_P2, _budget_zero("warm_cache", "scale")),
    Case("minor-issue", "minor", SLA_P3, _short_monitor),
]


@pytest.fixture
def incidents(prefect_api: str) -> Iterator[list[str]]:
    """Incidents of the test; their timers still scheduled at the end are cancelled."""
    ids: list[str] = []
    yield ids
    for incident_id in ids:
        PrefectApi(prefect_api).cancel_scheduled(f"incident:{incident_id}", "test teardown")


def _escalation_runs(api_url: str, incident_id: str) -> list[FlowRun]:
    """The incident's runs (tag ``incident:<id>``) of the escalation deployment, by due time."""
    with SyncPrefectClient(api_url) as client:
        deployment = client.read_deployment_by_name(ESCALATION_DEPLOYMENT)
        tagged = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"incident:{incident_id}"]))
        )
    runs = [r for r in tagged if r.deployment_id == deployment.id]
    return sorted(runs, key=lambda r: r.expected_start_time or datetime.max)


def _state(api_url: str, run: FlowRun) -> tuple[str, str]:
    found = PrefectApi(api_url).read_flow_run(run.id)
    assert found.state is not None
    return found.state.type.value, found.state.name or ""


def _pages(store: IncidentStore, incident_id: str) -> list[tuple[str, int]]:
    return [
        (a.target, a.detail["step"]) for a in store.get(incident_id).actions if a.kind == "page"
    ]


def _paged(store: IncidentStore, incident_id: str, role: str) -> bool:
    return (role, 1) in _pages(store, incident_id)


def _run_named(api_url: str, run: FlowRun, name: str) -> bool:
    return _state(api_url, run)[1] == name


def _playbook(case: Case, sandbox: Sandbox) -> tuple[Any, Alert, PlaybookConfig]:
    """The flow, the alert and the config (fast, as in the drills) of one case."""
    if case.scenario is None:
        from flows.default_triage import default_triage

        name = "SomethingNobodyRoutes"
        alert = Alert(
            name=name,
            labels={"alertname": name, "severity": "critical", "service": "mystery"},
            starts_at=utcnow(),
            fingerprint=uuid.uuid4().hex[:16],
        )
        return default_triage, alert, PlaybookConfig(namespace="default")
    plan = plan_drill(case.scenario, sandbox, SANDBOX_SCALE, approval_timeout_s=60)
    sandbox.inject_fault()
    alert = Alert.from_alertmanager(plan.rule.webhook(utcnow(), 1.0).alerts[0])
    if case.playbook == "high-error-rate":  # the CRONOS section no scenario drills by default
        from flows.high_error_rate import high_error_rate

        base: Any = plan.config
        config = quick_high_error_rate_config(base.service_url)
        return high_error_rate, alert, config
    return plan.playbook, alert, plan.config


@dataclass
class Opened:
    """One playbook's incident after its run, and the rungs it scheduled."""

    case: Case
    incident_id: str
    due: list[datetime]
    runs: list[FlowRun]


def _open_and_escalate(case: Case, oncall_home: Path, prefect_api: str) -> Opened:
    """Run the playbook with no worker alive; check its outcome and the ladder it scheduled."""
    with Sandbox(home=oncall_home, time_scale=SANDBOX_SCALE, scenario=case.scenario) as sandbox:
        flow, alert, config = _playbook(case, sandbox)
        case.escalate_at_once(config)
        config.escalation_time_scale = case.scale
        state = flow(alert=alert, config=config, return_state=True)
    store = IncidentStore(OncallSettings().store_url)
    incident = store.get(Incident.id_for(alert))
    assert incident.playbook == case.playbook
    assert state.name == "Escalated", f"{case.playbook}: {state.name}: {state.message}"
    assert incident.status is IncidentStatus.ESCALATED
    assert incident.acknowledged_by is None
    assert _pages(store, incident.id) == []

    # 1. The timers it scheduled when it opened the incident are its ladder.
    assert incident.transitions[0].status is IncidentStatus.TRIGGERED
    opened = incident.transitions[0].at
    due = [opened + timedelta(minutes=minutes * case.scale) for minutes, _ in case.ladder]
    runs = _escalation_runs(prefect_api, incident.id)
    assert [r.parameters for r in runs] == [
        {"incident_id": incident.id, "step": step, "role": role}
        for step, (_, role) in enumerate(case.ladder, start=1)
    ], case.playbook
    for run, at in zip(runs, due, strict=True):
        assert run.expected_start_time is not None
        assert abs((run.expected_start_time - at).total_seconds()) < 0.01, (run.name, at)
        assert "escalation" in run.tags
        assert _state(prefect_api, run) == ("SCHEDULED", "Scheduled"), case.playbook
    return Opened(case, incident.id, due, runs)


@pytest.mark.timeout(600)  # eleven playbooks, then waits of a minute: 200 s when loaded
def test_every_playbooks_timers_fire_after_a_worker_restart_and_stop_on_ack(
    worker: Worker, prefect_api: str, oncall_home: Path, incidents: list[str]
) -> None:
    worker.launch()  # once first, so the escalation deployment is registered ...
    worker.wait_ready()
    worker.kill()  # ... and dead while every playbook opens its incident and escalates.
    opened: list[Opened] = []
    for case in CASES:
        opened.append(_open_and_escalate(case, oncall_home, prefect_api))
        incidents.append(opened[-1].incident_id)
    store = IncidentStore(OncallSettings().store_url)
    assert all(_pages(store, o.incident_id) == [] for o in opened)  # nobody fired them

    # 2. A worker started afterwards fires every first rung once it is due ...
    worker.launch()
    worker.wait_ready()
    for o in sorted(opened, key=lambda o: o.due[0]):
        first, rest = o.runs[0], o.runs[1:]
        role = o.case.ladder[0][1]
        wait_s = max(0.0, (o.due[0] - utcnow()).total_seconds()) + 60
        wait_for(partial(_paged, store, o.incident_id, role), wait_s, "a page")
        assert utcnow() < o.due[1], f"{o.case.playbook}: the second rung came due first"
        assert _pages(store, o.incident_id) == [(role, 1)], o.case.playbook
        page = next(a for a in store.get(o.incident_id).actions if a.kind == "page")
        assert page.at >= o.due[0]
        wait_for(partial(_run_named, prefect_api, first, "Paged"), 10, "the first rung's run Paged")

        # 3. ... and an acknowledgement cancels the incident's other rungs before they are due.
        assert all(_state(prefect_api, r) == ("SCHEDULED", "Scheduled") for r in rest)
        result = subprocess.run(
            [ONCALL, "ack", o.incident_id, "--by", "jane"],
            env={**os.environ, "ONCALL_HOME": str(oncall_home), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(rest)} escalation timer(s) cancelled" in result.stdout, result.stdout
        assert utcnow() < o.due[1], f"{o.case.playbook}: acknowledged after the second rung"
        assert all(_state(prefect_api, r)[0] == "CANCELLED" for r in rest), o.case.playbook
        assert store.get(o.incident_id).acknowledged_by == "jane"

    assert worker.alive(), worker.log.read_text()
    for o in opened:  # one page each, whatever the worker polled meanwhile
        assert _pages(store, o.incident_id) == [(o.case.ladder[0][1], 1)], o.case.playbook
        assert _state(prefect_api, o.runs[0]) == ("COMPLETED", "Paged")
