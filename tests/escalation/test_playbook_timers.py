"""Every playbook's own escalation timers: its ladder, fired after a restart, stopped by an ack.

tests/escalation/test_timers.py proves the mechanism with a hand-scheduled run. Here each
playbook opens its incident itself, against its sandbox scenario, while no worker runs, and
one run per playbook shows both modes in turn:

1. ladder: the escalation runs the playbook scheduled on the Prefect server (tag
   ``incident:<id>``) are the playbook's ladder: one per rung, due at incident opened +
   minutes x ``escalation_time_scale``, the rung's role in the parameters;
2. restart: the playbook ends ``Escalated`` with no human; the first rung comes due while no
   worker runs and stays Scheduled; an ``oncall worker`` started after that fires it: the
   incident gets the page (kind ``page``, target the role, step 1), the run ends ``Paged``;
3. ack: ``oncall ack <id> --by jane`` then reports the remaining rungs cancelled; they are
   CANCELLED and, past the last one's due time with the worker still polling, nobody else
   has been paged.

The ladders are written out here, not read from the code under test: GremlinsAI seed
15 min secondary, 30 min escalation_manager, 60 min vp_engineering; CRONOS SLA table
response target -> secondary, resolution target -> engineering_manager (P1 15 min / 4 h,
P2 30 min / 8 h, P3 2 h / 24 h).

Playbook x mode: one run per playbook shows all three, in order.

| playbook             | scenario          | ladder (min)    | 1 ladder | 2 restart | 3 ack |
|----------------------|-------------------|-----------------|----------|-----------|-------|
| high-api-error-rate  | bad-deploy        | seed 15/30/60   | yes      | yes       | yes   |
| high-llm-latency     | llm-latency       | seed 15/30/60   | yes      | yes       | yes   |
| weaviate-down        | weaviate-down     | seed 15/30/60   | yes      | yes       | yes   |
| default-triage       | (empty cluster)   | seed 15/30/60   | yes      | yes       | yes   |
| service-down         | service-down      | P1 SLA 15/240   | yes      | yes       | yes   |
| high-error-rate      | service-down      | P1 SLA 15/240   | yes      | yes       | yes   |
| db-pool-exhausted    | db-pool-exhausted | P1 SLA 15/240   | yes      | yes       | yes   |
| degraded-performance | degraded          | P2 SLA 30/480   | yes      | yes       | yes   |
| pod-crash-loop       | crash-loop        | P2 SLA 30/480   | yes      | yes       | yes   |
| high-latency         | high-latency      | P2 SLA 30/480   | yes      | yes       | yes   |
| minor-issue          | minor             | P3 SLA 120/1440 | yes      | yes       | yes   |

Each escalates at once, with no human and no approval pause: the budget per hour of its
first mitigation kind is 0 (rollback for high-api-error-rate and service-down, which then
need no approval; restart for high-llm-latency, weaviate-down and high-error-rate; set_env
for db-pool-exhausted; scale for degraded-performance; config for pod-crash-loop;
warm_cache for high-latency; the next kinds too where there are any); minor-issue watches
for 0.1 s, too short for a streak of healthy windows ("still intermittent"); default-triage
escalates an unknown alert as it is.

Time scale. Between the first two rungs the test must restart the worker, see the page and
run ``oncall ack``: two interpreter starts that cost ~6 s and ~4 s of CPU here, and 15-30 s
of wall time together while others load the machine (load average 4-12 on 2 cores seen).
So ``escalation_time_scale`` is derived from how long this test's first ``oncall worker``
took to get ready (S, a rough gauge of the load): the gap between the first two rungs holds
``min(42, max(22, S + 18))`` s after the later of the first rung and the playbook's end
(allowed ``0.6 S + 2`` s); the cap keeps a GremlinsAI run within pytest's 300 s timeout.
GremlinsAI (second rung = 2 x first): the first rung is due that long after the incident
opened, e.g. S = 7 s: 25/50/100 s, scale ~0.028. CRONOS (second rung = 16 x first for P1
and P2, 12 x for P3): e.g. S = 7 s: P1 and P2 2 s and 31 s (scale ~0.0022 and ~0.0011),
P3 2.6 s and 31 s (~0.00036). A CRONOS first rung is thus due while the playbook still runs,
with no worker, and must wait for one. A GremlinsAI first rung ~8-10 s after the opening
would leave too little room: the restart and the ack take ~12 s on an idle machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from oncall.clients.prefect_api import PrefectApi
from oncall.drill_catalog import plan_drill
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.playbooks import HighErrorRateConfig, PlaybookConfig
from oncall.sandbox import Sandbox
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tasks.escalation import ESCALATION_DEPLOYMENT

ONCALL = str(Path(sys.executable).parent / "oncall")
SANDBOX_SCALE = 0.01  # the drill clock, as in the playbook tests

Ladder = list[tuple[float, str]]  # (minutes after the incident opened, role paged)

SEED: Ladder = [(15, "secondary"), (30, "escalation_manager"), (60, "vp_engineering")]
SLA_P1: Ladder = [(15, "secondary"), (4 * 60, "engineering_manager")]
SLA_P2: Ladder = [(30, "secondary"), (8 * 60, "engineering_manager")]
SLA_P3: Ladder = [(2 * 60, "secondary"), (24 * 60, "engineering_manager")]


@dataclass(frozen=True)
class Case:
    """One playbook: the scenario it runs against, the ladder it must schedule."""

    playbook: str
    scenario: str | None  # None: an empty cluster (default triage's unknown alert)
    ladder: Ladder
    escalate_at_once: Callable[[Any], None]  # makes the config escalate with no human

    def scale(self, startup_s: float) -> float:
        """``escalation_time_scale`` for a machine where `oncall worker` takes ``startup_s``."""
        sequence = min(42.0, max(22.0, startup_s + 18))  # restart, page, `oncall ack`
        playbook = 0.6 * startup_s + 2  # opened -> Escalated: 3-11 s seen, S 8-32 s
        (first_min, _), (second_min, _) = self.ladder[:2]
        ratio = second_min / first_min
        first_s = max(1.0, sequence / (ratio - 1), (playbook + sequence) / ratio)
        return first_s / (first_min * 60)


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


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _sleep_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - utcnow()).total_seconds()))


class Worker:
    """`oncall worker` as a user runs it, in its own process group; one log per start."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self._launched = 0.0
        self._ready: threading.Event = threading.Event()
        self.startup_s = 0.0

    @property
    def log(self) -> Path:
        return self.home / f"worker-{self.starts}.log"

    def launch(self) -> None:
        """Start it; a thread notes when it is ready (it says so once it has registered)."""
        self.starts += 1
        self._ready = threading.Event()
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [ONCALL, "worker", "--poll", "0.1"],
                env={**os.environ, "ONCALL_HOME": str(self.home), "COLUMNS": "200"},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        self._launched = time.monotonic()
        threading.Thread(target=self._watch, args=(self.proc, self.log), daemon=True).start()

    def _watch(self, proc: subprocess.Popen[str], log: Path) -> None:
        while proc.poll() is None and time.monotonic() - self._launched < 120:
            if "Worker ready" in log.read_text():
                self.startup_s = time.monotonic() - self._launched
                self._ready.set()
                return
            time.sleep(0.05)

    def wait_ready(self) -> float:
        """Block until it is ready; return how long it took from its launch."""
        assert self._ready.wait(125), f"worker not ready:\n{self.log.read_text()}"
        return self.startup_s

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def worker(oncall_home: Path, prefect_api: str) -> Iterator[Worker]:
    oncall_home.mkdir(parents=True, exist_ok=True)
    w = Worker(oncall_home)
    yield w
    w.kill()


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
        config = HighErrorRateConfig(
            service_url=base.service_url,
            verify_checks=2,
            verify_window_s=0.5,
            verify_timeout_s=3,
            rollout_timeout_s=15,
        )
        return high_error_rate, alert, config
    return plan.playbook, alert, plan.config


@pytest.mark.parametrize("case", CASES, ids=[c.playbook for c in CASES])
def test_playbook_timers_fire_after_a_worker_restart_and_stop_on_ack(
    case: Case, worker: Worker, prefect_api: str, oncall_home: Path, incidents: list[str]
) -> None:
    began = time.monotonic()

    def mark(what: str) -> None:
        print(f"[{case.playbook}] {time.monotonic() - began:5.1f}s {what}")

    worker.launch()  # once first, so the escalation deployment is registered ...
    with Sandbox(home=oncall_home, time_scale=SANDBOX_SCALE, scenario=case.scenario) as sandbox:
        flow, alert, config = _playbook(case, sandbox)
        incidents.append(Incident.id_for(alert))
        startup_s = worker.wait_ready()
        worker.kill()  # ... and dead while the playbook opens the incident and escalates.
        scale = case.scale(startup_s)
        case.escalate_at_once(config)
        config.escalation_time_scale = scale
        mark(f"worker started in {startup_s:.1f}s: scale {scale:.6f}")
        state = flow(alert=alert, config=config, return_state=True)
    store = IncidentStore(OncallSettings().store_url)
    incident = store.get(Incident.id_for(alert))
    opened = incident.transitions[0].at
    mark(f"playbook {state.name} {(utcnow() - opened).total_seconds():.1f}s after opening")
    assert incident.playbook == case.playbook
    assert state.name == "Escalated", f"{state.name}: {state.message}"
    assert incident.status is IncidentStatus.ESCALATED
    assert incident.acknowledged_by is None
    assert _pages(store, incident.id) == []

    # 1. The timers it scheduled when it opened the incident are its ladder.
    assert incident.transitions[0].status is IncidentStatus.TRIGGERED
    due = [opened + timedelta(minutes=minutes * scale) for minutes, _ in case.ladder]
    runs = _escalation_runs(prefect_api, incident.id)
    assert [r.parameters for r in runs] == [
        {"incident_id": incident.id, "step": step, "role": role}
        for step, (_, role) in enumerate(case.ladder, start=1)
    ]
    for run, at in zip(runs, due, strict=True):
        assert run.expected_start_time is not None
        assert abs((run.expected_start_time - at).total_seconds()) < 0.01, (run.name, at)
        assert "escalation" in run.tags
        assert _state(prefect_api, run) == ("SCHEDULED", "Scheduled")
    first, rest = runs[0], runs[1:]

    # 2. The first rung comes due with no worker: it waits; a worker started later fires it.
    _sleep_until(due[0] + timedelta(seconds=0.3))
    assert _state(prefect_api, first) == ("SCHEDULED", "Scheduled")
    assert _pages(store, incident.id) == []
    worker.launch()
    worker.wait_ready()
    mark(f"worker restarted in {worker.startup_s:.1f}s")
    _wait(lambda: (case.ladder[0][1], 1) in _pages(store, incident.id), 60, "the first page")
    mark("first rung paged")
    late = "" if utcnow() < due[1] else " (the second rung came due: the scale is too small)"
    assert _pages(store, incident.id) == [(case.ladder[0][1], 1)], late
    page = next(a for a in store.get(incident.id).actions if a.kind == "page")
    assert page.at >= due[0]
    _wait(lambda: _state(prefect_api, first)[1] == "Paged", 10, "the first rung's run Paged")

    # 3. An acknowledgement cancels the rest before they are due.
    assert all(_state(prefect_api, r) == ("SCHEDULED", "Scheduled") for r in rest)
    result = subprocess.run(
        [ONCALL, "ack", incident.id, "--by", "jane"],
        env={**os.environ, "ONCALL_HOME": str(oncall_home), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    mark(f"acked, {(due[1] - utcnow()).total_seconds():.1f}s before the second rung")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rest)} escalation timer(s) cancelled" in result.stdout, result.stdout
    assert all(_state(prefect_api, r)[0] == "CANCELLED" for r in rest)
    assert store.get(incident.id).acknowledged_by == "jane"

    _sleep_until(due[-1] + timedelta(seconds=2))  # past every cancelled rung, worker polling
    assert worker.alive(), worker.log.read_text()
    assert _pages(store, incident.id) == [(case.ladder[0][1], 1)]
    assert all(_state(prefect_api, r)[0] == "CANCELLED" for r in rest)
    assert _state(prefect_api, first) == ("COMPLETED", "Paged")
    mark("done")
