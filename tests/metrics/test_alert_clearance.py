""" "Verify all alerts have cleared": the incident resolves only once Alertmanager lets go.

Against Debian's Alertmanager, fed the alert over its API as Prometheus feeds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from flows.naming import incident_run_name_for
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.drill_catalog import plan_drill
from tasks.verify import wait_for_alert_to_clear
from tests.conftest import requires
from tests.playbooks.conftest import SCALE, Human
from tests.prometheus_daemon import ALERTMANAGER, alertmanager

pytestmark = requires(ALERTMANAGER is not None, "prometheus-alertmanager")

LABELS = {
    "alertname": "HighApiErrorRate",
    "service": "gremlinsai-backend",
    "namespace": "gremlinsai",
    "severity": "critical",
}


def _post(url: str, labels: dict[str, str], *, firing: bool) -> None:
    now = utcnow()
    ends = now + timedelta(hours=1) if firing else now - timedelta(seconds=1)
    alert = {
        "labels": labels,
        "annotations": {"summary": "API 5xx error rate above 5%"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "endsAt": ends.isoformat(),
        "generatorURL": "http://prometheus/graph",
    }
    httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


@pytest.fixture
def am(tmp_path: Path) -> Iterator[str]:
    """A running Alertmanager's URL."""
    with alertmanager(tmp_path / "alertmanager") as url:
        yield url


def test_the_wait_ends_when_the_alert_ends(am: str) -> None:
    _post(am, LABELS, firing=True)
    wanted = {"alertname": "HighApiErrorRate", "service": "gremlinsai-backend"}
    still = wait_for_alert_to_clear(am, wanted, 1.0, 0.25)
    assert still.checked and not still.cleared
    assert still.firing == [LABELS]
    assert "still firing in Alertmanager" in still.detail

    resolver = threading.Timer(1.5, lambda: _post(am, LABELS, firing=False))
    resolver.start()
    started = time.monotonic()
    done = wait_for_alert_to_clear(am, wanted, 30.0, 0.25)
    resolver.join()
    assert done.checked and done.cleared
    assert time.monotonic() - started >= 1.0  # it waited for the end, not just asked once


def test_another_alert_does_not_hold_the_incident(am: str) -> None:
    _post(am, {**LABELS, "service": "cronos-ai"}, firing=True)
    done = wait_for_alert_to_clear(
        am, {"alertname": "HighApiErrorRate", "service": "gremlinsai-backend"}, 1, 0.25
    )
    assert done.checked and done.cleared


def test_without_alertmanager_clearance_is_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONCALL_ALERTMANAGER_URL", raising=False)
    found = wait_for_alert_to_clear(None, LABELS, 1, 0.25)
    assert not found.checked and "no Alertmanager" in found.detail


def test_a_healed_service_whose_alert_still_fires_is_escalated(
    am: str, oncall_home: Path, prefect_api: str
) -> None:
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario="bad-deploy") as sandbox:
        plan = plan_drill("bad-deploy", sandbox, SCALE, approval_timeout_s=60)
        plan.config.alertmanager_url = am
        plan.config.alert_clear_timeout_s = 2
        plan.config.alert_clear_interval_s = 0.5
        sandbox.inject_fault()
        alert = Alert.from_alertmanager(plan.rule.webhook(utcnow(), 1.0).alerts[0])
        _post(am, {"alertname": alert.name, **alert.labels}, firing=True)
        human = Human(
            prefect_api, incident_run_name_for(alert), {"approve": True, "approver": "jane"}
        )
        human.start()
        state = plan.playbook(alert=alert, config=plan.config, return_state=True)
        human.join(5)
        assert human.error is None, human.error
        assert not sandbox.fault_active()  # the rollback did heal the service
    assert state.name == "Escalated"
    assert "the metrics verified, but still firing in Alertmanager" in str(state.message)
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))
    assert incident.status is IncidentStatus.ESCALATED
    (clearance,) = [a for a in incident.actions if a.kind == "alert-clearance"]
    assert clearance.detail["checked"] and not clearance.detail["cleared"]
    (verification,) = [a for a in incident.actions if a.kind == "verification"]
    assert verification.detail["passed"]
