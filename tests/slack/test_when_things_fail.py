"""Slack or PagerDuty failing never fails or delays a drill; a click after expiry does nothing."""

from __future__ import annotations

import threading
import time

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Incident, IncidentStatus
from oncall.settings import OncallSettings
from oncall.slack.blocks import APPROVE
from oncall.slack.interactivity import PATH
from oncall.store import IncidentStore
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster, Human
from tests.slack.conftest import (
    JANE,
    Intake,
    InteractiveSlack,
    approval_buttons,
    block_actions,
    slack_headers,
    wait_for,
)


def test_slack_outage_and_a_refused_pagerduty_event_do_not_stop_the_drill(
    faulted: FaultedCluster,
    configured: None,
    slack: InteractiveSlack,
    fake_pagerduty: FakePagerDuty,
    prefect_api: str,
) -> None:
    for method in ("chat.postMessage", "chat.update", "conversations.history"):
        slack.server_error_next(method, times=1000, status=500)
    fake_pagerduty.fail_next(400)  # the trigger is refused for good

    human = Human(
        prefect_api, incident_run_name_for(faulted.alert), {"approve": True, "approver": "jane"}
    )
    human.start()
    state = high_api_error_rate(alert=faulted.alert, config=faulted.config, return_state=True)
    human.join(5)
    assert human.error is None, human.error

    assert state.name == "Resolved", state.message
    assert faulted.kube.health(NAMESPACE, BLUE).revision == 4
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert))
    errors = [a for a in incident.actions if a.kind == "notify-error"]
    slack_errors = [e for e in errors if e.target == "slack"]
    assert slack_errors and "service_unavailable" in slack_errors[0].detail["error"]
    (pd_error,) = [e for e in errors if e.target == "pagerduty"]
    assert pd_error.detail["notification"] == "opened" and "HTTP 400" in pd_error.detail["error"]
    # Slack was tried once (with its retries), then left alone: no step waited on it again.
    assert 1 <= len(slack.requests) <= 3, [r.method for r in slack.requests]
    # PagerDuty's 400 is not retried; the page goes out at the next need of a person (the
    # approval), then the approver's acknowledgement and the resolution.
    assert [r.status for r in fake_pagerduty.requests] == [400, 202, 202, 202]
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge", "resolve"]


def test_a_click_after_the_approval_expired_is_answered_and_changes_nothing(
    faulted: FaultedCluster, intake: Intake, slack: InteractiveSlack, prefect_api: str
) -> None:
    faulted.config.approval_timeout_s = 3
    prefect = PrefectApi(prefect_api)
    bodies: list[bytes] = []

    def grab_the_button() -> None:
        prefect.wait_for_pause(incident_run_name_for(faulted.alert), timeout_s=60)
        message = wait_for(
            lambda: (m := slack.incident_message()) and approval_buttons(m) and m, 10, "buttons"
        )
        bodies.append(block_actions(slack, message, APPROVE, JANE))

    grabber = threading.Thread(target=grab_the_button, daemon=True)
    grabber.start()
    state = high_api_error_rate(alert=faulted.alert, config=faulted.config, return_state=True)
    grabber.join(5)
    assert state.name == "Escalated"
    (body,) = bodies

    started = time.monotonic()
    answer = intake.post(PATH, body, slack_headers(body))
    assert answer.status_code == 200 and time.monotonic() - started < 3
    wait_for(lambda: slack.ephemerals, 10, "the ephemeral answer")
    assert "expired" in slack.ephemerals[0]["text"]

    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert))
    assert [a.decision for a in incident.approvals] == ["timed_out"]
    assert incident.status is IncidentStatus.ESCALATED
    assert faulted.kube.health(NAMESPACE, BLUE).revision == 3
    # The message shows the expiry and the escalation mentions the primary on-call.
    message = slack.incident_message()
    text = str(message.blocks)
    assert "Expired at" in text
    assert "Escalated to <@U07GA0" in text
    assert any("<@U07GA0" in m.text for m in slack.thread(message.ts))
