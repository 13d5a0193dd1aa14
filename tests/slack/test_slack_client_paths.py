"""The Slack side without a drill: Retry-After, idempotent posting, approvers by user group."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from oncall.clients.notify import Notifications
from oncall.clients.slack import SlackSettings
from oncall.models import Alert, Approval, Incident, Severity, utcnow
from oncall.slack.approvers import Approvers
from oncall.slack.notifier import SlackNotifier, bounded_client
from oncall.store import IncidentStore
from tests.slack.conftest import APPROVERS_GROUP, CHANNEL, JANE, MALLORY, SAM, InteractiveSlack


@pytest.fixture
def store(tmp_path: Path) -> IncidentStore:
    return IncidentStore(f"sqlite:///{tmp_path / 'oncall.db'}")


def _settings(slack: InteractiveSlack) -> SlackSettings:
    return SlackSettings(
        bot_token=SecretStr(slack.token),
        api_url=slack.url,
        channel=CHANNEL,
        approvers=[JANE[0], APPROVERS_GROUP],
    )


def _incident(store: IncidentStore) -> Incident:
    alert = Alert(
        name="ServiceDown",
        labels={"service": "gremlinsai-backend", "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    return store.create(Incident(id=Incident.id_for(alert), alert=alert, severity=Severity.P1))


def test_rate_limit_is_waited_out_and_the_message_is_posted_once(
    slack: InteractiveSlack, store: IncidentStore
) -> None:
    incident = _incident(store)
    notifier = SlackNotifier.from_settings(_settings(slack), store, lambda _: None)
    slack.rate_limit_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    notifier.opened(incident)
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls("chat.postMessage")][:2] == [429, 200]
    # Re-run of the step (a retried task, a re-run flow): the same message is edited.
    again = SlackNotifier.from_settings(_settings(slack), store, lambda _: None)
    again.opened(incident)
    again.approval_requested(incident, str(uuid.uuid4()), "### Roll back\n\n**Plan:** revision 2")
    again.approval_decided(
        incident, Approval(approver="sam.lee (U0SAMLEE001)", decision="rejected")
    )
    message = slack.incident_message()
    assert message.edited
    assert "Rejected by <@U0SAMLEE001>" in str(message.blocks)
    assert "*Roll back*" in str(message.blocks)


def test_a_long_retry_after_is_not_waited_on_and_is_recorded(
    slack: InteractiveSlack, store: IncidentStore
) -> None:
    incident = _incident(store)
    slack_notifier = SlackNotifier.from_settings(_settings(slack), store, lambda _: None)
    notifications = Notifications([("slack", slack_notifier)], store)
    slack.rate_limit_next("chat.postMessage", retry_after=30)
    started = time.monotonic()
    notifications.opened(incident)
    notifications.step(incident, "still going")  # Slack is left alone for a while
    assert time.monotonic() - started < 2
    (error,) = [a for a in store.get(incident.id).actions if a.kind == "notify-error"]
    assert error.target == "slack" and "ratelimited" in error.detail["error"]
    assert len(slack.calls("chat.postMessage")) == 1


def test_approvers_are_user_ids_and_user_group_members(slack: InteractiveSlack) -> None:
    approvers = Approvers(bounded_client(_settings(slack)), [JANE[0], APPROVERS_GROUP])
    assert approvers.may_approve(JANE[0])
    assert approvers.may_approve(SAM[0])
    assert not approvers.may_approve(MALLORY[0])
    assert [c.args["usergroup"] for c in slack.calls("usergroups.users.list")] == [APPROVERS_GROUP]
