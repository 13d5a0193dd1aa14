"""A drill in Slack and PagerDuty: one message, updated in place, approved by a click."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Incident
from oncall.settings import OncallSettings
from oncall.slack.blocks import APPROVE
from oncall.slack.interactivity import PATH
from oncall.slack.ledger import SlackLedger
from oncall.store import IncidentStore
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster
from tests.slack.conftest import (
    CHANNEL,
    JANE,
    MALLORY,
    Intake,
    InteractiveSlack,
    approval_buttons,
    block_actions,
    slack_headers,
    wait_for,
)

GOOD = "ghcr.io/gremlinsai/backend:1.4.2"


class OnCallInSlack(threading.Thread):
    """Jane at her desk: a stranger and a forger try first, then she double-clicks Approve."""

    def __init__(
        self, slack: InteractiveSlack, intake: Intake, prefect: PrefectApi, run: str
    ) -> None:
        super().__init__(daemon=True)
        self.slack, self.intake, self.prefect, self.run_name = slack, intake, prefect, run
        self.seen: dict[str, Any] = {}
        self.error: Exception | None = None

    def click(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        started = time.monotonic()
        response = self.intake.post(PATH, body, headers)
        self.seen.setdefault("answer_s", []).append(time.monotonic() - started)
        return response

    def run(self) -> None:
        try:
            paused = self.prefect.wait_for_pause(self.run_name, timeout_s=60)
            message = wait_for(
                lambda: (m := self.slack.incident_message()) and approval_buttons(m) and m,
                10,
                "the Approve button",
            )
            approve = block_actions(self.slack, message, APPROVE, JANE)
            self.seen["approve_body"] = approve
            self.seen["forged"] = self.click(approve, slack_headers(approve, secret="not-it"))
            self.seen["stale"] = self.click(approve, slack_headers(approve, at=time.time() - 301))
            stranger = block_actions(self.slack, message, APPROVE, MALLORY)
            self.seen["stranger"] = self.click(stranger, slack_headers(stranger))
            wait_for(lambda: self.slack.ephemerals, 10, "the stranger's answer")
            run = self.prefect.read_flow_run(paused.id)
            self.seen["paused_after_refusals"] = bool(run.state and run.state.is_paused())
            # A double click: two requests arrive together.
            answers: list[httpx.Response] = []
            clicks = [
                threading.Thread(
                    target=lambda: answers.append(self.click(approve, slack_headers(approve)))
                )
                for _ in range(2)
            ]
            for thread in clicks:
                thread.start()
            for thread in clicks:
                thread.join(10)
            self.seen["double"] = answers
        except Exception as exc:
            self.error = exc


def _steps(slack: InteractiveSlack) -> list[str]:
    """The "Current step" of the message after each chat.update, in order."""
    steps = []
    for call in slack.calls("chat.update"):
        blocks = call.args["blocks"]
        blocks = blocks if isinstance(blocks, list) else json.loads(blocks)
        text = next(
            b["text"]["text"]
            for b in blocks
            if b.get("text", {}).get("text", "").startswith("*Current step*")
        )
        steps.append(text.removeprefix("*Current step*\n"))
    return steps


def _in_order(steps: list[str], wanted: list[Callable[[str], bool]]) -> bool:
    it = iter(steps)
    return all(any(check(step) for step in it) for check in wanted)


def test_approve_in_slack_resumes_the_drill_and_the_message_follows_it(
    faulted: FaultedCluster,
    intake: Intake,
    slack: InteractiveSlack,
    fake_pagerduty: FakePagerDuty,
    prefect_api: str,
) -> None:
    prefect = PrefectApi(prefect_api)
    jane = OnCallInSlack(slack, intake, prefect, incident_run_name_for(faulted.alert))
    jane.start()
    state = high_api_error_rate(alert=faulted.alert, config=faulted.config, return_state=True)
    jane.join(10)
    assert jane.error is None, jane.error
    store = IncidentStore(OncallSettings().store_url)
    incident = store.get(Incident.id_for(faulted.alert))

    # The click resumed the paused drill: the rollback happened.
    assert state.name == "Resolved", state.message
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert (after.revision, after.images) == (4, [GOOD])
    (approval,) = incident.approvals
    assert (approval.approver, approval.decision, approval.reason) == (
        "jane.doe (U0JANEDOE01)",
        "approved",
        "Slack",
    )
    # Slack signed the click and names the user: a verified decision.
    assert (approval.channel, approval.verified) == ("slack", True)

    # Refused: forged signature, stale timestamp (401); a stranger (ephemeral), run still paused.
    seen = jane.seen
    assert seen["forged"].status_code == 401
    assert seen["stale"].status_code == 401
    assert seen["stranger"].status_code == 200
    assert seen["paused_after_refusals"]
    assert "not allowed" in slack.ephemerals[0]["text"]
    assert slack.ephemerals[0]["response_type"] == "ephemeral"
    # The double click: both answered at once, one resume, the other told "already decided".
    assert [r.status_code for r in seen["double"]] == [200, 200]
    assert max(seen["answer_s"]) < 3.0
    wait_for(lambda: len(slack.ephemerals) >= 2, 10, "the second click's answer")
    assert "Already decided" in slack.ephemerals[1]["text"]
    claim = SlackLedger(store.engine).claimed(f"{incident.flow_run_id}#1")
    assert claim is not None and claim.outcome == "resumed"

    # A late click on a finished run: "already decided", and nothing else happens.
    late = intake.post(PATH, seen["approve_body"], slack_headers(seen["approve_body"]))
    assert late.status_code == 200
    wait_for(lambda: len(slack.ephemerals) >= 3, 10, "the late click's answer")
    assert "Already decided" in slack.ephemerals[2]["text"]
    assert len(store.get(incident.id).approvals) == 1

    # One message in #incidents, with the incident's metadata, edited in place all along.
    message = slack.incident_message()
    assert message.channel == CHANNEL
    assert message.metadata == {
        "event_type": "oncall_incident",
        "event_payload": {"key": incident.id},
    }
    assert len([c for c in slack.calls("chat.postMessage") if not c.args.get("thread_ts")]) == 1
    text = str(message.blocks)
    assert "[P1] HighApiErrorRate on gremlinsai-backend" in text
    assert "P1 (Critical" in text
    assert f"/runs/flow-run/{incident.flow_run_id}|Prefect flow run>" in text
    assert f"<{faulted.alert.generator_url}|Alert source>" in text
    assert "Approved by <@U0JANEDOE01>" in text
    assert not approval_buttons(message)
    steps = _steps(slack)
    assert _in_order(
        steps,
        [
            lambda s: s.startswith("Picked up by playbook"),
            lambda s: s.startswith("diagnosis"),
            lambda s: s.startswith("rollback") and "planned" in s,
            lambda s: s == "Waiting for approval",
            lambda s: "approved by" in s,
            lambda s: s.startswith("Acknowledged by "),  # the approver has it now
            lambda s: s.startswith("rollback") and "done" in s,
            lambda s: s.startswith("rollout"),
            lambda s: s.startswith("Resolved"),
        ],
    ), steps
    thread = " ".join(m.text for m in slack.thread(message.ts))
    assert "Approval needed" in thread and "Resolved" in thread and "diagnosis" in thread

    # PagerDuty: triggered (P1: at once), acknowledged only once the approver answered,
    # resolved, under the incident's key.
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge", "resolve"]
    trigger = fake_pagerduty.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert any("flow-run" in link["href"] for link in trigger["links"])
    assert not [a for a in incident.actions if a.kind == "notify-error"]
