"""Default triage takes any alert, even on a worker with no cluster configured at all."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flows.default_triage import default_triage
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore


def test_an_unknown_alert_is_acknowledged_and_escalated_without_a_cluster(
    oncall_home: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONCALL_KUBECONFIG", raising=False)
    settings = OncallSettings()
    assert settings.kubeconfig is None and not settings.sandbox_kubeconfig.exists()
    alert = Alert(
        name="DiskAlmostFull",
        labels={"alertname": "DiskAlmostFull", "severity": "warning", "service": "ledger"},
        annotations={"summary": "/var is 93% full"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )

    state = default_triage(alert=alert, return_state=True)

    assert state.name == "Escalated", state.message
    assert "no playbook for DiskAlmostFull" in (state.message or "")
    assert "/var is 93% full" in (state.message or "")
    incident = IncidentStore(settings.store_url).get(Incident.id_for(alert))
    assert incident.status == IncidentStatus.ESCALATED
    assert incident.at(IncidentStatus.ACKNOWLEDGED) is not None
