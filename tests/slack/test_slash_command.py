"""``/oncall`` from Slack, through the real intake over HTTP, against the fake Slack.

Slack posts a signed form (command, text, user_id, user_name, response_url) and wants an
answer within 3 s; an action's outcome comes back through the response_url.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from oncall.clients.notify import PagerDutyNotifier
from oncall.clients.pagerduty import PagerDutyClient
from oncall.models import Alert, Incident, IncidentStatus, Severity, utcnow
from oncall.pauses import Pauses
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.slack.conftest import (
    JANE,
    MALLORY,
    SAM,
    Intake,
    InteractiveSlack,
    slack_headers,
    wait_for,
)

PATH = "/v1/slack/commands"


def _body(slack: InteractiveSlack, user: tuple[str, str], text: str) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T0FAKETEAM1",
            "channel_id": "C0INCIDENT1",
            "user_id": user[0],
            "user_name": user[1],
            "command": "/oncall",
            "text": text,
            "response_url": slack.response_url(),
            "trigger_id": "1.2.3",
        }
    ).encode()


def _say(intake: Intake, slack: InteractiveSlack, user: tuple[str, str], text: str) -> str:
    """Type ``/oncall text`` as ``user``; the immediate answer's text (it must be 200)."""
    body = _body(slack, user, text)
    started = time.monotonic()
    response = intake.post(PATH, body, slack_headers(body))
    assert time.monotonic() - started < 3, "Slack gives up after 3 s"
    assert response.status_code == 200, response.text
    assert response.json()["response_type"] == "ephemeral"
    return str(response.json()["text"])


def _outcome(slack: InteractiveSlack, seen: int) -> dict[str, object]:
    """The next post to a response_url after ``seen`` of them."""
    wait_for(lambda: len(slack.ephemerals) > seen, 20, "the command's outcome")
    return slack.ephemerals[seen]


def _incident(store: IncidentStore) -> Incident:
    alert = Alert(
        name="HighApiErrorRate",
        labels={"service": "ledger", "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    return store.create(Incident(id=Incident.id_for(alert), alert=alert, severity=Severity.P1))


def test_signed_unsigned_and_replayed_commands(
    intake: Intake, slack: InteractiveSlack, oncall_home: Path
) -> None:
    assert "/oncall who" in _say(intake, slack, MALLORY, "help")  # anyone may read

    body = _body(slack, JANE, "status")
    unsigned = intake.post(PATH, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    forged = intake.post(PATH, body, slack_headers(body, secret="not-the-secret"))
    assert forged.status_code == 401
    stale = intake.post(PATH, body, slack_headers(body, at=time.time() - 600))
    assert stale.status_code == 401
    headers = slack_headers(body)
    assert intake.post(PATH, body, headers).status_code == 200
    replayed = intake.post(PATH, body, headers)
    assert (replayed.status_code, replayed.text) == (401, "replayed request")
    as_json = intake.post(PATH, body, {**slack_headers(body), "Content-Type": "application/json"})
    assert as_json.status_code == 415
    no_user = b"command=%2Foncall&text=status"
    assert intake.post(PATH, no_user, slack_headers(no_user)).status_code == 400


def test_who_and_status_answer_at_once(
    intake: Intake, slack: InteractiveSlack, oncall_home: Path
) -> None:
    who = _say(intake, slack, MALLORY, "who")
    assert who.startswith("On call: primary: ") and "secondary: " in who
    store = IncidentStore(OncallSettings().store_url)
    incident = _incident(store)
    status = _say(intake, slack, MALLORY, "status")
    assert "1 open incident(s)" in status and incident.id in status
    assert "Could not answer" in _say(intake, slack, MALLORY, "who no-such-service")


def test_a_person_who_may_not_act_is_refused_and_nothing_changes(
    intake: Intake, slack: InteractiveSlack, oncall_home: Path
) -> None:
    store = IncidentStore(OncallSettings().store_url)
    incident = _incident(store)
    for text in (f"ack {incident.id}", f"resolve {incident.id}", "pause ledger 1h deploy"):
        assert "not allowed" in _say(intake, slack, MALLORY, text)
    time.sleep(0.5)  # nothing queued: nothing arrives
    assert slack.ephemerals == []
    after = store.get(incident.id)
    assert after.acknowledged_by is None and after.status is IncidentStatus.TRIGGERED
    assert Pauses(store).active() == []


def test_ack_resolve_pause_resume_from_slack(
    intake: Intake, slack: InteractiveSlack, fake_pagerduty: FakePagerDuty, oncall_home: Path
) -> None:
    store = IncidentStore(OncallSettings().store_url)
    incident = _incident(store)
    client = PagerDutyClient(fake_pagerduty.routing_key, fake_pagerduty.url)
    PagerDutyNotifier(client, lambda _: None, store=store).opened(incident)  # P1: paged

    assert "Working on it" in _say(intake, slack, JANE, f"ack {incident.id}")
    done = _outcome(slack, 0)
    assert done["response_type"] == "in_channel"
    assert f"`{incident.id}` acknowledged by <@{JANE[0]}>" in str(done["text"])
    assert store.get(incident.id).acknowledged_by == f"{JANE[1]} ({JANE[0]})"
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge"]

    _say(intake, slack, SAM, "pause ledger 2h db migration")  # an approver through the group
    paused = _outcome(slack, 1)
    assert "automation paused for ledger until" in str(paused["text"])
    (pause,) = Pauses(store).active()
    assert (pause.service, pause.reason) == ("ledger", "db migration")
    assert pause.by == f"{SAM[1]} ({SAM[0]})"
    assert "automation paused for ledger" in _say(intake, slack, MALLORY, "status")

    _say(intake, slack, JANE, "pause ledger soon because")
    refused = _outcome(slack, 2)
    assert refused["response_type"] == "ephemeral" and "not a duration" in str(refused["text"])

    _say(intake, slack, JANE, "resume ledger")
    assert "Automation resumed for ledger" in str(_outcome(slack, 3)["text"])
    assert Pauses(store).active() == []

    _say(intake, slack, JANE, f"resolve {incident.id} rolled back by hand")
    resolved = _outcome(slack, 4)
    assert "resolved by jane.doe (U0JANEDOE01): rolled back by hand" in str(resolved["text"])
    assert store.get(incident.id).status is IncidentStatus.RESOLVED
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge", "resolve"]

    _say(intake, slack, JANE, "ack inc-doesnotexist")
    assert "Could not `ack`" in str(_outcome(slack, 5)["text"])
