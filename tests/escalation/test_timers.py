"""Durable escalation timers: scheduled runs on the Prefect server, fired by `oncall worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, Severity, Transition, utcnow
from oncall.store import IncidentStore
from tasks.escalation import ESCALATION_DEPLOYMENT

ONCALL = str(Path(sys.executable).parent / "oncall")


class Worker:
    """`oncall worker` as a user runs it, in its own process group."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        log = (self.home / "worker.log").open("a")
        self.proc = subprocess.Popen(
            [ONCALL, "worker", "--poll", "0.1"],
            env={**os.environ, "ONCALL_HOME": str(self.home), "COLUMNS": "200"},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        _wait(lambda: "Worker ready" in (self.home / "worker.log").read_text(), 60, "worker ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def worker(oncall_home: Path, prefect_api: str) -> Iterator[Worker]:
    oncall_home.mkdir(parents=True, exist_ok=True)
    w = Worker(oncall_home)
    w.start()
    yield w
    w.kill()


def _incident(home: Path) -> Incident:
    alert = Alert(
        name="SomethingBroke",
        labels={"service": "api", "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    store = IncidentStore(f"sqlite:///{home / 'oncall.db'}")
    return store.create(
        Incident(
            id=Incident.id_for(alert),
            alert=alert,
            severity=Severity.P1,
            transitions=[Transition(status=IncidentStatus.TRIGGERED)],
        )
    )


def _schedule(prefect: PrefectApi, incident: Incident, seconds: float) -> str:
    run = prefect.schedule_run(
        ESCALATION_DEPLOYMENT,
        parameters={"incident_id": incident.id, "step": 1, "role": "secondary"},
        at=utcnow() + timedelta(seconds=seconds),
        idempotency_key=f"{incident.id}:escalation:1",
        tags=[f"incident:{incident.id}", "escalation"],
    )
    assert run is not None, "the worker registers the escalation deployment"
    return str(run.id)


def test_timer_fires_after_a_worker_restart(
    worker: Worker, prefect_api: str, oncall_home: Path
) -> None:
    prefect = PrefectApi(prefect_api)
    incident = _incident(oncall_home)
    run_id = _schedule(prefect, incident, seconds=4)
    worker.kill()  # the worker dies before the timer is due ...
    time.sleep(5)
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    assert store.get(incident.id).status is IncidentStatus.TRIGGERED
    worker.start()  # ... and the timer still fires once a worker is back.
    _wait(lambda: store.get(incident.id).status is IncidentStatus.ESCALATED, 30, "escalation")
    paged = [a for a in store.get(incident.id).actions if a.kind == "page"]
    assert [(a.target, a.detail["step"]) for a in paged] == [("secondary", 1)]
    _wait(lambda: prefect.read_flow_run(uuid.UUID(run_id)).state.name == "Paged", 10, "Paged")


def test_acknowledgement_cancels_the_timer(
    worker: Worker, prefect_api: str, oncall_home: Path
) -> None:
    prefect = PrefectApi(prefect_api)
    incident = _incident(oncall_home)
    run_id = _schedule(prefect, incident, seconds=3)
    result = subprocess.run(
        [ONCALL, "ack", incident.id, "--by", "jane"],
        env={**os.environ, "ONCALL_HOME": str(oncall_home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 escalation timer(s) cancelled" in result.stdout
    time.sleep(5)  # past the due time, with the worker running
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    after = store.get(incident.id)
    assert after.acknowledged_by == "jane"
    assert not [a for a in after.actions if a.kind == "page"]
    assert prefect.read_flow_run(uuid.UUID(run_id)).state.type.value == "CANCELLED"
