"""PagerDuty: Events API v2 out with retries, V3 webhooks in through the intake."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from oncall.clients.notify import Notifications, PagerDutyNotifier
from oncall.clients.pagerduty import PagerDutyClient, PagerDutyRefused, PagerDutyUnavailable
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, Severity, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall.wiring import Clients
from tasks.escalation import ESCALATION_DEPLOYMENT
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.slack.conftest import Intake, InteractiveSlack, pagerduty_headers, pagerduty_webhook

JANE_IN_PD = {"id": "PJANE01", "type": "user_reference", "summary": "Jane Doe"}
OUR_INTEGRATION = {
    "id": "PINTEG1",
    "type": "service_reference",
    "summary": "oncall (Events API v2)",
}


def _incident(store: IncidentStore) -> Incident:
    alert = Alert(
        name="HighApiErrorRate",
        labels={"service": "gremlinsai-backend", "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
        generator_url="http://prometheus/graph?g0.expr=x",
    )
    return store.create(Incident(id=Incident.id_for(alert), alert=alert, severity=Severity.P1))


def _escalation_timer(prefect_api: str, incident: Incident) -> uuid.UUID:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.escalation import escalation_step

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        escalation_step.to_deployment(name="default").apply()  # type: ignore[union-attr]
    run = PrefectApi(prefect_api).schedule_run(
        ESCALATION_DEPLOYMENT,
        parameters={"incident_id": incident.id, "step": 2, "role": "secondary"},
        at=utcnow() + timedelta(minutes=15),
        idempotency_key=f"{incident.id}:escalation:2",
        tags=[f"incident:{incident.id}", "escalation"],
    )
    assert run is not None
    return run.id


def test_acknowledgement_by_a_person_in_pagerduty_stops_escalation(
    intake: Intake, oncall_home: Path, prefect_api: str
) -> None:
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    incident = _incident(store)
    timer = _escalation_timer(prefect_api, incident)
    prefect = PrefectApi(prefect_api)

    # Our own Events API acknowledge comes back as a webhook: that is not a person.
    ours = pagerduty_webhook("incident.acknowledged", incident.id, OUR_INTEGRATION)
    assert intake.post("/v1/alerts/pagerduty", ours, pagerduty_headers(ours)).status_code == 202
    assert store.get(incident.id).acknowledged_by is None
    assert prefect.read_flow_run(timer).state.type.value == "SCHEDULED"  # type: ignore[union-attr]

    forged = pagerduty_webhook("incident.acknowledged", incident.id, JANE_IN_PD)
    bad = pagerduty_headers(forged, secret="not-the-secret")
    assert intake.post("/v1/alerts/pagerduty", forged, bad).status_code == 403
    assert store.get(incident.id).acknowledged_by is None

    body = pagerduty_webhook("incident.acknowledged", incident.id, JANE_IN_PD)
    assert intake.post("/v1/alerts/pagerduty", body, pagerduty_headers(body)).status_code == 202
    assert store.get(incident.id).acknowledged_by == "Jane Doe (PagerDuty PJANE01)"
    assert prefect.read_flow_run(timer).state.type.value == "CANCELLED"  # type: ignore[union-attr]

    resolved = pagerduty_webhook("incident.resolved", incident.id, JANE_IN_PD)
    response = intake.post("/v1/alerts/pagerduty", resolved, pagerduty_headers(resolved))
    assert response.status_code == 202
    after = store.get(incident.id)
    assert after.status is IncidentStatus.RESOLVED
    assert after.transitions[-1].note == "resolved in PagerDuty by Jane Doe (PagerDuty PJANE01)"
    # Re-delivered: nothing changes twice.
    again = intake.post("/v1/alerts/pagerduty", resolved, pagerduty_headers(resolved))
    assert again.status_code == 202
    assert len(store.get(incident.id).transitions) == len(after.transitions)


def test_events_carry_the_incident_key_and_429_and_5xx_are_retried(
    fake_pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    client = PagerDutyClient(fake_pagerduty.routing_key, fake_pagerduty.url, backoff_s=0.05)
    store = IncidentStore(f"sqlite:///{tmp_path / 'oncall.db'}")
    incident = _incident(store)
    notifier = PagerDutyNotifier(client, lambda run_id: f"http://prefect/runs/flow-run/{run_id}")

    fake_pagerduty.fail_next(429, retry_after=1)
    started = time.monotonic()
    notifier.opened(incident)
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    fake_pagerduty.fail_next(503, times=2)
    notifier.acknowledged(incident)
    notifier.resolved(incident, "verified")
    assert [r.status for r in fake_pagerduty.requests] == [429, 202, 503, 503, 202, 202]
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge", "resolve"]
    payload = fake_pagerduty.events[0]["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"] == "[P1] HighApiErrorRate on gremlinsai-backend"
    assert payload["custom_details"]["incident"] == incident.id
    assert fake_pagerduty.events[0]["links"][0]["href"] == incident.alert.generator_url

    fake_pagerduty.fail_next(500, times=3)
    with pytest.raises(PagerDutyUnavailable):
        client.acknowledge(incident.id)
    wrong = PagerDutyClient("R0WRONGKEY", fake_pagerduty.url)
    with pytest.raises(PagerDutyRefused, match="routing_key"):
        wrong.resolve(incident.id)

    # Through the notifier a refusal is recorded on the incident, never raised (a P1 pages
    # when it opens).
    Notifications([("pagerduty", PagerDutyNotifier(wrong, lambda _: None))], store).opened(incident)
    (error,) = [a for a in store.get(incident.id).actions if a.kind == "notify-error"]
    assert error.target == "pagerduty" and "HTTP 400" in error.detail["error"]
    assert error.detail["notification"] == "opened"


def test_an_acknowledgement_in_pagerduty_is_shown_in_slack_and_not_sent_back(
    intake: Intake,
    slack: InteractiveSlack,
    fake_pagerduty: FakePagerDuty,
    oncall_home: Path,
    prefect_api: str,
) -> None:
    store = IncidentStore(f"sqlite:///{oncall_home / 'oncall.db'}")
    incident = _incident(store)
    notifier = Clients(OncallSettings()).notifier
    notifier.opened(incident)  # the incident's Slack message, and the page
    assert fake_pagerduty.actions(incident.id) == ["trigger"]

    body = pagerduty_webhook("incident.acknowledged", incident.id, JANE_IN_PD)
    assert intake.post("/v1/alerts/pagerduty", body, pagerduty_headers(body)).status_code == 202
    shown = str(slack.incident_message().blocks)
    assert "Acknowledged by Jane Doe (PagerDuty PJANE01)" in shown
    assert fake_pagerduty.actions(incident.id) == ["trigger"]  # PagerDuty knew: not told back

    resolved = pagerduty_webhook("incident.resolved", incident.id, JANE_IN_PD)
    answer = intake.post("/v1/alerts/pagerduty", resolved, pagerduty_headers(resolved))
    assert answer.status_code == 202
    assert "resolved in PagerDuty by Jane Doe" in str(slack.incident_message().blocks)
    assert fake_pagerduty.actions(incident.id) == ["trigger"]
