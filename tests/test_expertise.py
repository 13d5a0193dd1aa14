"""The experts an escalation adds, by the alert's area (seed: database, LLM, vector DB,
Kubernetes)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from oncall.expertise import area_of
from oncall.models import Alert, Incident, Severity, utcnow
from oncall.settings import OncallSettings
from oncall.wiring import Clients


def _alert(name: str, **labels: str) -> Alert:
    return Alert(
        name=name,
        labels={"alertname": name, **labels},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )


@pytest.mark.parametrize(
    ("alert", "area"),
    [
        (_alert("DatabaseConnectionPoolExhausted"), "database"),
        (_alert("HighLLMLatency", component="llm"), "llm-ai"),
        (_alert("HighApiErrorRate", component="llm"), "llm-ai"),  # the component says so
        (_alert("WeaviateDown"), "weaviate-vector-db"),
        (_alert("KubePodCrashLooping"), "kubernetes-infrastructure"),
        (_alert("HighApiErrorRate"), None),
        (_alert("ServiceDown"), None),
        (_alert("Anything", area="payments-ledger"), "payments-ledger"),  # explicit wins
    ],
)
def test_the_area_of_an_alert(alert: Alert, area: str | None) -> None:
    assert area_of(alert) == area


def test_the_rotations_experts_of_the_area_join_the_escalation(tmp_path: Path) -> None:
    clients = Clients(OncallSettings(home=tmp_path))  # the shipped example rotation

    def experts(alert: Alert) -> list[str]:
        incident = Incident(id=Incident.id_for(alert), alert=alert, severity=Severity.P1)
        return clients.experts_for(incident)

    assert experts(_alert("DatabaseConnectionPoolExhausted")) == [
        "David Kim (U07GA0DAVE3)",
        "Alex Chen (U07GA0ALEX1)",
    ]
    assert [e.split(" (")[0] for e in experts(_alert("WeaviateDown"))] == [
        "Sarah Johnson",
        "Alex Chen",
    ]
    assert experts(_alert("HighApiErrorRate")) == []
    assert experts(_alert("Anything", area="nobody-knows")) == []
