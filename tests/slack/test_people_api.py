"""People steer over the intake's API, each as themselves (an approver token): declare,
acknowledge, escalate, resolve, reopen, pause and resume; PagerDuty follows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from oncall.approvers import ApproverTokens
from oncall.models import IncidentStatus
from oncall.pauses import Pauses
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.slack.conftest import TOKEN, Intake


def _post(intake: Intake, path: str, body: object, token: str) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return intake.post(path, json.dumps(body).encode(), headers)


def test_a_person_steers_an_incident_over_the_api(
    intake: Intake, fake_pagerduty: FakePagerDuty, oncall_home: Path
) -> None:
    store = IncidentStore(OncallSettings().store_url)
    jane = ApproverTokens(store).add("Jane Doe")

    # Who acts must be a person: no token, the intake's shared token, a made-up one.
    for token in ("", TOKEN, "not-a-token"):
        refused = _post(intake, "/v1/incidents", {"service": "ledger", "title": "x"}, token)
        assert refused.status_code == 401, refused.text
    assert store.list() == []

    bad = _post(intake, "/v1/incidents", {"service": "ledger", "severity": "P9"}, jane)
    assert bad.status_code == 422
    assert "severity" in bad.text and "title" in bad.text  # every wrong field named
    as_text = intake.post("/v1/incidents", b"service=ledger", {"Authorization": f"Bearer {jane}"})
    assert as_text.status_code == 415

    declared = _post(
        intake, "/v1/incidents", {"service": "ledger", "severity": "P1", "title": "down"}, jane
    )
    assert declared.status_code == 200, declared.text
    incident_id = declared.json()["incident"]
    assert store.get(incident_id).acknowledged_by == "Jane Doe"
    assert fake_pagerduty.actions(incident_id) == ["trigger"]  # P1 pages at once

    up = _post(intake, f"/v1/incidents/{incident_id}/escalate", {"to": "vp", "reason": "x"}, jane)
    assert up.status_code == 200, up.text
    assert any("Lisa Wang" in c for c in up.json()["contacts"])
    assert store.get(incident_id).status is IncidentStatus.ESCALATED
    wrong_rung = _post(intake, f"/v1/incidents/{incident_id}/escalate", {"to": "ceo"}, jane)
    assert wrong_rung.status_code == 422 and "to" in wrong_rung.text

    done = _post(intake, f"/v1/incidents/{incident_id}/resolve", {"note": "restarted"}, jane)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "resolved"
    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
    twice = _post(intake, f"/v1/incidents/{incident_id}/resolve", {}, jane)
    assert twice.status_code == 409 and "already resolved" in twice.text

    back = _post(intake, f"/v1/incidents/{incident_id}/reopen", {"note": "down again"}, jane)
    assert back.status_code == 200 and back.json()["status"] == "escalated"
    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve", "trigger"]
    again = _post(intake, f"/v1/incidents/{incident_id}/reopen", {}, jane)
    assert again.status_code == 409

    assert store.get(incident_id).acknowledged_by is None  # the new page awaits an answer
    taken = _post(intake, f"/v1/incidents/{incident_id}/acknowledge", {}, jane)
    assert taken.status_code == 200, taken.text
    assert taken.json()["acknowledged_by"] == "Jane Doe"
    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve", "trigger", "acknowledge"]

    missing = _post(intake, "/v1/incidents/inc-doesnotexist/acknowledge", {}, jane)
    assert missing.status_code == 404


def test_pause_and_resume_over_the_api(intake: Intake, oncall_home: Path) -> None:
    store = IncidentStore(OncallSettings().store_url)
    sam = ApproverTokens(store).add("Sam Lee")
    soon = _post(intake, "/v1/pauses", {"service": "ledger", "duration": "soon"}, sam)
    assert soon.status_code == 422
    assert "not a duration" in soon.text and "reason" in soon.text
    too_long = _post(intake, "/v1/pauses", {"service": "x", "duration": "9d", "reason": "r"}, sam)
    assert too_long.status_code == 422
    assert Pauses(store).active() == []

    paused = _post(
        intake, "/v1/pauses", {"service": "ledger", "duration": "2h", "reason": "migration"}, sam
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["by"] == "Sam Lee"
    listed = httpx.get(f"{intake.url}/v1/pauses", headers={"Authorization": f"Bearer {sam}"})
    assert [p["service"] for p in listed.json()] == ["ledger"]

    headers = {"Authorization": f"Bearer {sam}"}
    assert httpx.delete(f"{intake.url}/v1/pauses/ledger").status_code == 401
    assert httpx.delete(f"{intake.url}/v1/pauses/ledger", headers=headers).status_code == 200
    assert httpx.delete(f"{intake.url}/v1/pauses/ledger", headers=headers).status_code == 404
    assert Pauses(store).active() == []
