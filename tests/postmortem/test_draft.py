"""The draft as a pure function of hand-built evidence: SLA missed, escalated incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oncall.models import (
    Action,
    Alert,
    Approval,
    Incident,
    IncidentStatus,
    Severity,
    Transition,
)
from oncall.postmortem import Evidence, draft_postmortem
from oncall.postmortem.evidence import FlowRunRecord, OwnerSuggestion, RunState
from oncall.rotation.postmortems import parse_postmortem

T0 = datetime(2025, 3, 4, 10, 0, 0, 250000, tzinfo=UTC)


def _incident(severity: Severity, steps: list[tuple[IncidentStatus, timedelta, str]]) -> Incident:
    alert = Alert(
        name="HighApiErrorRate",
        labels={"alertname": "HighApiErrorRate", "service": "gremlinsai-backend"},
        annotations={"summary": "API 5xx error rate above 5%", "value": "0.3100"},
        starts_at=T0,
        fingerprint="0123456789abcdef",
    )
    return Incident(
        id="inc-0000000001",
        alert=alert,
        severity=severity,
        playbook="high-api-error-rate",
        flow_run_id="11111111-1111-1111-1111-111111111111",
        transitions=[Transition(status=s, at=T0 + d, note=n) for s, d, n in steps],
    )


def test_late_acknowledgement_and_resolution_miss_the_p2_sla() -> None:
    incident = _incident(
        Severity.P2,
        [
            (IncidentStatus.TRIGGERED, timedelta(minutes=1), ""),
            (IncidentStatus.ACKNOWLEDGED, timedelta(minutes=45), "playbook started"),
            (IncidentStatus.MITIGATED, timedelta(hours=2), "restart"),
            (IncidentStatus.RESOLVED, timedelta(hours=9), "5xx rate within 0.05"),
        ],
    )
    incident.acknowledged_by = "jane"
    incident.acknowledged_at = T0 + timedelta(minutes=45)
    text = draft_postmortem(Evidence(incident=incident, gathered_at=T0 + timedelta(hours=10)))

    assert "Acknowledge within 30 minutes: **missed** (2700.0 s = 45 min 00 s)" in text
    assert "- Time to acknowledge: 2700.0 s = 45 min 00 s (jane took it at " in text
    assert "Resolve within 8 hours: **missed** (32400.0 s = 9 h 00 min 00 s)" in text
    assert "- Time to mitigate: 7200.0 s = 2 h 00 min 00 s (MITIGATED transition at " in text
    assert "- **Duration**: 2025-03-04 10:00:00 UTC - 2025-03-04 19:00:00 UTC (32400.0 s" in text
    assert "- 2025-03-04 10:45:00 UTC: Acknowledged: playbook started [incident]" in text
    # Nothing the evidence does not say: no suspect, no owners, no invented cause.
    assert "No rollout correlates with the alert in the evidence." in text
    assert "_owner to be named_" in text


def test_the_playbooks_own_acknowledgement_is_not_a_response() -> None:
    # The playbook acknowledged the alert within seconds; no person ever took it.
    incident = _incident(
        Severity.P1,
        [
            (IncidentStatus.TRIGGERED, timedelta(seconds=1), ""),
            (IncidentStatus.ACKNOWLEDGED, timedelta(seconds=2), "playbook started"),
            (IncidentStatus.ESCALATED, timedelta(minutes=5), "no fix found"),
        ],
    )
    text = draft_postmortem(Evidence(incident=incident, gathered_at=T0 + timedelta(minutes=20)))
    assert "- Time to acknowledge: not reached (no person took the incident)" in text
    assert "the playbook acknowledged the alert: 2.0 s" in text and "(automation" in text
    assert "Acknowledge within 15 minutes: **missed** (not reached)" in text
    early = draft_postmortem(Evidence(incident=incident, gathered_at=T0 + timedelta(minutes=10)))
    assert "Acknowledge within 15 minutes: **pending** (not reached)" in early


def test_escalated_incident_is_written_up_as_unresolved_with_the_rejection() -> None:
    incident = _incident(
        Severity.P1,
        [
            (IncidentStatus.TRIGGERED, timedelta(seconds=2), ""),
            (IncidentStatus.ACKNOWLEDGED, timedelta(seconds=3), "playbook started"),
            (IncidentStatus.ESCALATED, timedelta(minutes=2), "rollback rejected: nothing changed"),
        ],
    )
    incident.approvals = [
        Approval(
            approver="sam", decision="rejected", reason="db migration", at=T0 + timedelta(minutes=1)
        )
    ]
    incident.acknowledged_by = "sam"
    incident.actions = [
        Action(
            kind="page",
            target="secondary",
            detail={"step": 2, "contacts": ["Sarah Johnson (U0SARAH001)"]},
            at=T0 + timedelta(minutes=15),
        )
    ]
    escalation = FlowRunRecord(
        id="22222222-2222-2222-2222-222222222222",
        name="escalate inc-0000000001 step 2 to secondary",
        states=[
            RunState(type="SCHEDULED", name="Scheduled", at=T0 + timedelta(seconds=2)),
            RunState(type="COMPLETED", name="Paged", at=T0 + timedelta(minutes=15, seconds=1)),
        ],
    )
    evidence = Evidence(
        incident=incident,
        gathered_at=T0 + timedelta(hours=5),
        runs=[escalation],
        owners=[OwnerSuggestion(name="David Kim", handle="@david.kim", why="primary on call")],
    )
    text = draft_postmortem(evidence)

    assert "not resolved by the playbook (status escalated)" in text
    assert "Resolve within 4 hours: **missed** (not reached)" in text
    # sam took it with the decision on the approval form, a minute in.
    assert "Acknowledge within 15 minutes: **met** (60.0 s = 1 min 00 s)" in text
    assert "- Time to acknowledge: 60.0 s = 1 min 00 s (sam took it at 2025-03-04 10:01:00" in text
    assert '- 2025-03-04 10:01:00 UTC: Approval rejected by sam: "db migration" [incident]' in text
    assert "- 2025-03-04 10:15:00 UTC: Escalation: paged secondary (Sarah Johnson" in text
    assert (
        "- 2025-03-04 10:15:01 UTC: Run 'escalate inc-0000000001 step 2 to secondary' state Paged"
        in text
    )
    assert "- No mitigation was applied by the playbook." in text
    assert "Not resolved by the playbook: escalated: rollback rejected: nothing changed" in text
    parsed = parse_postmortem("inc-0000000001.md", text)
    assert parsed.title.startswith("Incident Post-Mortem: 2025-03-04 - HighApiErrorRate")
    assert any(
        "Review the escalation" in item and "_suggested: David Kim_" in item
        for item in parsed.open_items
    )

    # An hour in, the four-hour resolution target is not yet missed.
    evidence.gathered_at = T0 + timedelta(hours=1)
    assert "Resolve within 4 hours: **pending** (not reached)" in draft_postmortem(evidence)
