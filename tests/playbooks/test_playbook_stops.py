"""A playbook that cannot go on hands its incident to a human at once.

The cluster being unreachable is the usual case in a real incident (the cluster may be
what is broken). The run must not end in a bare exception while the incident waits for
the first escalation timer (15 minutes on the GremlinsAI ladder).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flows.service_down import service_down
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.conftest import free_port
from tests.fakes.pagerduty_server import FakePagerDuty, fake_pagerduty  # noqa: F401


def unreachable_cluster(tmp_path: Path) -> Path:
    """A kubeconfig whose API server is a port nothing listens on."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "http://127.0.0.1:{free_port()}"}}
users:
- name: oncall
  user: {{token: not-used}}
contexts:
- name: gone
  context: {{cluster: gone, user: oncall}}
current-context: gone
"""
    )
    return path


def test_an_unreachable_cluster_escalates_the_incident_at_once(
    oncall_home: Path, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONCALL_KUBECONFIG", str(unreachable_cluster(tmp_path)))
    alert = Alert(
        name="ServiceDown",
        labels={"alertname": "ServiceDown", "severity": "critical", "service": "api"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )

    state = service_down(alert=alert, return_state=True)

    assert state.is_failed() and state.name == "Escalated", state.message
    assert "the playbook stopped before it finished" in (state.message or "")
    assert "cluster unreachable" in (state.message or "")
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))
    assert incident.status == IncidentStatus.ESCALATED
    assert incident.at(IncidentStatus.ACKNOWLEDGED) is not None  # seed step 1 still came first


def test_a_subject_that_cannot_be_read_still_pages_and_escalates(
    oncall_home: Path,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_pagerduty: FakePagerDuty,  # noqa: F811
) -> None:
    # The crash-loop playbook reads its subject before it announces the incident: with the
    # cluster gone the incident must still reach PagerDuty, then escalate at once.
    from flows.pod_crash_loop import pod_crash_loop

    monkeypatch.setenv("ONCALL_KUBECONFIG", str(unreachable_cluster(tmp_path)))
    monkeypatch.setenv("ONCALL_PAGERDUTY_ROUTING_KEY", fake_pagerduty.routing_key)
    monkeypatch.setenv("ONCALL_PAGERDUTY_EVENTS_URL", fake_pagerduty.url)
    alert = Alert(
        name="KubePodCrashLooping",
        labels={"alertname": "KubePodCrashLooping", "namespace": "payments", "pod": "ledger-1"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )

    state = pod_crash_loop(alert=alert, return_state=True)

    assert state.name == "Escalated", state.message
    assert "the playbook stopped before it finished" in (state.message or "")
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))
    assert incident.status == IncidentStatus.ESCALATED
    assert fake_pagerduty.actions(incident.id)[:1] == ["trigger"]
