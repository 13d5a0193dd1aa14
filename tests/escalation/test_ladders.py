"""Which ladder an incident climbs by severity, and P3 timers held to business hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from oncall.business_hours import BusinessHours
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, Severity, Transition
from oncall.playbooks import SEED_LADDER, ladder_for, sla_ladder
from tasks.escalation import schedule_escalations

LA = ZoneInfo("America/Los_Angeles")


def test_the_seed_ladder_is_for_p1_and_p4_stays_in_slack() -> None:
    assert ladder_for(SEED_LADDER, Severity.P1) == SEED_LADDER
    assert ladder_for(SEED_LADDER, Severity.P2) == sla_ladder(Severity.P2)
    assert ladder_for(SEED_LADDER, Severity.P3) == sla_ladder(Severity.P3)
    assert ladder_for(None, Severity.P1) == sla_ladder(Severity.P1)
    assert ladder_for(SEED_LADDER, Severity.P4) == []
    assert ladder_for(None, Severity.P4) == []
    assert [s.after_minutes for s in sla_ladder(Severity.P3)] == [120, 24 * 60]


def test_business_hours_in_the_rotations_zone() -> None:
    hours = BusinessHours("America/Los_Angeles")
    tuesday_10 = datetime(2026, 12, 1, 10, 0, tzinfo=LA)
    assert hours.next_open(tuesday_10) == tuesday_10
    assert hours.next_open(datetime(2026, 12, 1, 7, 30, tzinfo=LA)) == datetime(
        2026, 12, 1, 9, 0, tzinfo=LA
    )
    friday_evening = datetime(2026, 12, 4, 17, 0, tzinfo=LA)
    monday_9 = datetime(2026, 12, 7, 9, 0, tzinfo=LA)
    assert hours.next_open(friday_evening) == monday_9
    assert hours.next_open(datetime(2026, 12, 5, 12, 0, tzinfo=LA)) == monday_9  # Saturday
    # In UTC the same instants: 17:00 UTC on a Tuesday is 09:00 in Los Angeles.
    assert hours.is_open(datetime(2026, 12, 1, 17, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 12, 1, 16, 59, tzinfo=UTC))


def _runs(prefect_api: str, incident_id: str) -> list[datetime]:
    with SyncPrefectClient(prefect_api) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"incident:{incident_id}"]))
        )
    return sorted(r.expected_start_time for r in runs if r.expected_start_time)


def test_a_p3_opened_on_saturday_waits_for_monday_morning(prefect_api: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.escalation import escalation_step

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        escalation_step.to_deployment(name="default").apply()  # type: ignore[union-attr]
    saturday_noon = datetime(2026, 12, 5, 12, 0, tzinfo=LA).astimezone(UTC)
    alert = Alert(
        name="DiskAlmostFull",
        labels={"service": "ledger", "severity": "warning"},
        starts_at=saturday_noon,
        fingerprint=uuid.uuid4().hex[:16],
    )
    incident = Incident(
        id=Incident.id_for(alert),
        alert=alert,
        severity=Severity.P3,
        transitions=[Transition(status=IncidentStatus.TRIGGERED, at=saturday_noon)],
    )
    prefect = PrefectApi(prefect_api)
    hours = BusinessHours("America/Los_Angeles")
    try:
        ladder = ladder_for(SEED_LADDER, Severity.P3)
        assert schedule_escalations(prefect, incident, ladder, 1.0, hours) == 2
        monday_9 = datetime(2026, 12, 7, 9, 0, tzinfo=LA)
        # Saturday 14:00 and Sunday 12:00 are both outside business hours: Monday 09:00.
        assert _runs(prefect_api, incident.id) == [monday_9, monday_9]
    finally:
        prefect.cancel_scheduled(f"incident:{incident.id}", "test")

    # A drill's compressed clock has no business hours: the rungs keep their offsets.
    drill = incident.model_copy(update={"id": incident.id + "d"})
    try:
        assert schedule_escalations(prefect, drill, ladder, 0.001, hours) == 2
        offsets = [t - saturday_noon for t in _runs(prefect_api, drill.id)]
        assert offsets == [timedelta(minutes=120 * 0.001), timedelta(minutes=1440 * 0.001)]
    finally:
        prefect.cancel_scheduled(f"incident:{drill.id}", "test")
