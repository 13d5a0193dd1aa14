"""Alert normalisation, severities and the incident store (SQLite and real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from oncall.alerting import ErrorRateRule, label_fingerprint
from oncall.errors import NotFoundError
from oncall.models import (
    Action,
    Alert,
    AlertmanagerWebhook,
    Approval,
    Incident,
    IncidentStatus,
    Severity,
    utcnow,
)
from oncall.store import IncidentStore
from tests.conftest import pg_schema

WEBHOOK = {
    "version": "4",
    "groupKey": '{}:{alertname="HighApiErrorRate"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "oncall",
    "groupLabels": {"alertname": "HighApiErrorRate"},
    "commonLabels": {"alertname": "HighApiErrorRate", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighApiErrorRate", "severity": "critical", "app": "api"},
            "annotations": {"summary": "5xx > 5%"},
            "startsAt": "2026-11-24T10:00:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
            "fingerprint": "c6b2a4d0e1f23456",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "HighApiErrorRate", "severity": "critical", "app": "web"},
            "annotations": {},
            "startsAt": "2026-11-24T09:00:00Z",
            "endsAt": "2026-11-24T09:30:00Z",
            "generatorURL": "",
            "fingerprint": "0000000000000001",
        },
    ],
}


def test_alertmanager_message_normalises_firing_and_resolved_alerts() -> None:
    message = AlertmanagerWebhook.model_validate(WEBHOOK)
    firing, resolved = (Alert.from_alertmanager(a) for a in message.alerts)
    assert firing.name == "HighApiErrorRate"
    assert firing.ends_at is None  # year 1 means "still firing"
    assert firing.service == "api"
    assert firing.occurrence_key == "c6b2a4d0e1f23456@2026-11-24T10:00:00.123000+00:00"
    assert resolved.status == "resolved"
    assert resolved.ends_at is not None and resolved.ends_at.hour == 9


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("alerts", 0, "fingerprint"), "not-hex", "fingerprint"),
        (("alerts", 0, "labels"), {"severity": "critical"}, "alertname"),
        (("version",), "3", "version"),
        (("alerts", 0, "startsAt"), "yesterday", "startsAt"),
    ],
)
def test_malformed_webhook_names_the_field(
    path: tuple[object, ...], value: object, field: str
) -> None:
    import copy

    body = copy.deepcopy(WEBHOOK)
    target: object = body
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        AlertmanagerWebhook.model_validate(body)
    assert field in str(info.value)


def test_same_occurrence_gets_the_same_incident_id_and_a_new_one_does_not() -> None:
    alert = Alert.from_alertmanager(AlertmanagerWebhook.model_validate(WEBHOOK).alerts[0])
    again = alert.model_copy()
    later = alert.model_copy(update={"starts_at": alert.starts_at + timedelta(hours=1)})
    assert Incident.id_for(alert) == Incident.id_for(again)
    assert Incident.id_for(alert) != Incident.id_for(later)


@pytest.mark.parametrize(
    ("labels", "expected", "response_min", "resolution_h"),
    [
        ({"severity": "critical"}, Severity.P1, 15, 4),
        ({"severity": "P2"}, Severity.P2, 30, 8),
        ({"severity": "warning"}, Severity.P3, 120, 24),
        ({"severity": "info"}, Severity.P4, 480, 72),
        ({}, Severity.P3, 120, 24),
    ],
)
def test_severity_triage_carries_the_cronos_targets(
    labels: dict[str, str], expected: Severity, response_min: int, resolution_h: int
) -> None:
    severity = Severity.from_labels(labels)
    assert severity is expected
    assert severity.response_target == timedelta(minutes=response_min)
    assert severity.resolution_target == timedelta(hours=resolution_h)


def test_fingerprint_is_alertmanager_shaped_and_order_independent() -> None:
    a = label_fingerprint({"alertname": "X", "severity": "critical"})
    b = label_fingerprint({"severity": "critical", "alertname": "X"})
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert a != label_fingerprint({"alertname": "X", "severity": "warning"})
    # FNV-1a 64 of the empty label set is the FNV offset basis.
    assert label_fingerprint({}) == "cbf29ce484222325"


def test_rule_webhook_round_trips_through_the_wire_model() -> None:
    rule = ErrorRateRule("HighApiErrorRate", 0.05, 1.0, 0.1, labels={"service": "api"})
    message = rule.webhook(utcnow(), 0.31)
    raw = message.model_dump(mode="json", by_alias=True)
    again = AlertmanagerWebhook.model_validate(raw)
    assert again.alerts[0].fingerprint == label_fingerprint(
        {"alertname": "HighApiErrorRate", "service": "api"}
    )
    assert again.alerts[0].annotations["value"] == "0.3100"


def _incident() -> Incident:
    alert = Alert(
        name="HighApiErrorRate",
        labels={"service": "api", "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    return Incident(id=Incident.id_for(alert), alert=alert, severity=Severity.P1, playbook="p")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    if request.param == "sqlite":
        yield IncidentStore(f"sqlite:///{tmp_path / 'store' / 'oncall.db'}")
        return
    with pg_schema() as url:
        yield IncidentStore(url)


def test_store_keeps_transitions_actions_and_approvals_in_order(store: IncidentStore) -> None:
    incident = store.create(_incident())
    store.transition(incident.id, IncidentStatus.ACKNOWLEDGED, "ack")
    store.add_action(incident.id, Action(kind="rollback", target="ns/dep", detail={"to": 2}))
    store.add_approval(incident.id, Approval(approver="jane", decision="approved", reason="ok"))
    store.transition(incident.id, IncidentStatus.RESOLVED, "verified")
    loaded = store.get(incident.id)
    assert [t.status for t in loaded.transitions] == [
        IncidentStatus.TRIGGERED,
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.RESOLVED,
    ]
    times = [t.at for t in loaded.transitions]
    assert times == sorted(times)
    assert loaded.approvals[0].approver == "jane"
    assert loaded.actions[0].detail == {"to": 2}
    assert loaded.status is IncidentStatus.RESOLVED
    assert any(i.id == incident.id for i in store.list())


def test_store_reports_a_missing_incident(store: IncidentStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("inc-does-not-exist")


def test_cronos_playbooks_escalate_on_the_severity_sla() -> None:
    from oncall.playbooks import SEED_LADDER, CronosConfig, HighApiErrorRateConfig, sla_ladder

    assert [(s.after_minutes, s.role) for s in sla_ladder(Severity.P1)] == [
        (15, "secondary"),
        (240, "engineering_manager"),
    ]
    assert [(s.after_minutes, s.role) for s in sla_ladder(Severity.P3)] == [
        (120, "secondary"),
        (1440, "engineering_manager"),
    ]
    assert CronosConfig().escalation is None  # resolved per incident from its severity
    assert HighApiErrorRateConfig().escalation == SEED_LADDER  # GremlinsAI: 15/30/60 min
