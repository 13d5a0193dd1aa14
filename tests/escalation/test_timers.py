"""Durable escalation timers: scheduled runs on the Prefect server, fired by `oncall worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, Severity, Transition, utcnow
from oncall.store import IncidentStore
from tasks.escalation import ESCALATION_DEPLOYMENT
from tests.escalation.conftest import ONCALL, Worker, wait_for


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
    worker.launch()
    worker.wait_ready()
    prefect = PrefectApi(prefect_api)
    incident = _incident(oncall_home)
    run_id = _schedule(prefect, incident, seconds=4)
    worker.kill()  # the worker dies before the timer is due ...
    time.sleep(5)
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    assert store.get(incident.id).status is IncidentStatus.TRIGGERED
    worker.launch()  # ... and the timer still fires once a worker is back.
    worker.wait_ready()
    wait_for(lambda: store.get(incident.id).status is IncidentStatus.ESCALATED, 30, "escalation")
    paged = [a for a in store.get(incident.id).actions if a.kind == "page"]
    assert [(a.target, a.detail["step"]) for a in paged] == [("secondary", 1)]
    wait_for(lambda: prefect.read_flow_run(uuid.UUID(run_id)).state.name == "Paged", 10, "Paged")


def test_acknowledgement_cancels_the_timer(
    worker: Worker, prefect_api: str, oncall_home: Path
) -> None:
    worker.launch()
    worker.wait_ready()
    prefect = PrefectApi(prefect_api)
    incident = _incident(oncall_home)
    due = time.monotonic() + 15
    run_id = _schedule(prefect, incident, seconds=15)
    # The worker is frozen while `oncall ack` starts: on a loaded machine that start took
    # longer than the timer's 15 s, and the page went out before the ack could cancel it.
    # Frozen, the worker cannot fire the timer, however late the ack comes; it runs again
    # before the due time has passed, so the cancelled timer meets a live worker.
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        result = subprocess.run(
            [ONCALL, "ack", incident.id, "--by", "jane"],
            env={**os.environ, "ONCALL_HOME": str(oncall_home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 escalation timer(s) cancelled" in result.stdout
    time.sleep(max(0.0, due - time.monotonic()) + 2)  # past the due time, worker running
    assert worker.alive(), worker.log.read_text()
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    after = store.get(incident.id)
    assert after.acknowledged_by == "jane"
    assert not [a for a in after.actions if a.kind == "page"]
    assert prefect.read_flow_run(uuid.UUID(run_id)).state.type.value == "CANCELLED"
