"""The hand-off flows on a real Prefect server, posting to the fake Slack over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.handoff import oncall_handoff, oncall_handoff_reminder
from oncall.clients.slack import SlackClient
from oncall.rotation import Rotation
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.fakes.slack_server import FakeSlack
from tests.rotation.test_report import seed_week

CHANNEL = "C0ONCALL001"
PRIMARY_GROUP, SECONDARY_GROUP = "S07GAONCALLP", "S07GAONCALLS"
HANDOFF = datetime.fromisoformat("2026-03-09T09:00:00-07:00")  # week 2: Sarah and David


@pytest.fixture
def slack(
    oncall_home: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> Iterator[FakeSlack]:
    """Fake Slack with the on-call channel and user groups; the product pointed at it."""
    with FakeSlack(channels={CHANNEL: "oncall"}) as fake:
        fake.add_usergroup(PRIMARY_GROUP, "oncall-primary", ["U07GA0ALEX1"])
        fake.add_usergroup(SECONDARY_GROUP, "oncall-secondary", ["U07GA0SARA2"])
        monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", fake.token)
        monkeypatch.setenv("ONCALL_SLACK_API_URL", fake.url)
        monkeypatch.setenv("ONCALL_SLACK_CHANNEL", CHANNEL)
        monkeypatch.delenv("ONCALL_ROTATION_FILE", raising=False)
        yield fake


def _posted(fake: FakeSlack) -> list[str]:
    return [c.response["ts"] for c in fake.calls("chat.postMessage") if c.response.get("ok")]


def test_handoff_posts_once_and_moves_the_user_groups(slack: FakeSlack) -> None:
    seed_week(IncidentStore(OncallSettings().store_url))
    first = oncall_handoff(at=HANDOFF, watched=[])
    assert (first.primary, first.secondary, first.posted_now) == (
        "Sarah Johnson",
        "David Kim",
        True,
    )
    assert slack.members(PRIMARY_GROUP) == ["U07GA0SARA2"]
    assert slack.members(SECONDARY_GROUP) == ["U07GA0DAVE3"]
    [message] = slack.channel_messages(CHANNEL)
    assert "Primary <@U07GA0ALEX1> → <@U07GA0SARA2>" in message.text
    body = "\n".join(b["text"]["text"] for b in message.blocks)
    assert "Past week: 3 incidents, 2 SLA misses" in body
    assert "inc-stillopen" in body and "rollback gremlinsai/backend-blue" in body
    assert message.metadata == {
        "event_type": "oncall_handoff",
        "event_payload": {"key": "handoff:2026-03-09T09:00:00-07:00:message"},
    }

    # Someone changed a group by hand meanwhile; the re-run still repeats nothing.
    slack.usergroups[PRIMARY_GROUP]["users"] = ["U07GA0MIKE4"]
    again = oncall_handoff(at=HANDOFF + timedelta(hours=2), watched=[])
    assert (again.posted_now, again.ts) == (False, first.ts)
    assert _posted(slack) == [first.ts]
    assert len(slack.calls("usergroups.users.update")) == 2
    assert slack.members(PRIMARY_GROUP) == ["U07GA0MIKE4"]

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["oncall-handoff"]))
        )
    assert any("**Sarah Johnson**" in str(a.data) for a in artifacts)


def test_handoff_after_a_crash_finds_its_message_in_slack(slack: FakeSlack) -> None:
    # A run posted, then died before recording it: Slack's history has the message.
    key = "handoff:2026-03-09T09:00:00-07:00:message"
    slack.messages.clear()
    posted = SlackClient(slack.token, base_url=slack.url).post_message(
        CHANNEL,
        "hand-off",
        metadata={"event_type": "oncall_handoff", "event_payload": {"key": key}},
    )
    outcome = oncall_handoff(at=HANDOFF, watched=[])
    assert (outcome.ts, outcome.posted_now) == (posted.ts, True)
    assert _posted(slack) == [posted.ts]  # nothing posted twice
    assert slack.members(PRIMARY_GROUP) == ["U07GA0SARA2"]


def test_rate_limited_group_update_is_retried(slack: FakeSlack) -> None:
    slack.rate_limit_next("usergroups.users.update", times=1, retry_after=0)
    oncall_handoff(at=HANDOFF, watched=[])
    assert [c.status for c in slack.calls("usergroups.users.update")] == [429, 200, 200]
    assert slack.members(SECONDARY_GROUP) == ["U07GA0DAVE3"]


def test_reminder_the_day_before_names_the_incoming_people_once(slack: FakeSlack) -> None:
    sunday = datetime.fromisoformat("2026-03-08T09:00:00-07:00")
    first = oncall_handoff_reminder(at=sunday)
    second = oncall_handoff_reminder(at=sunday + timedelta(minutes=5))
    assert (first.posted_now, second.posted_now, second.ts) == (True, False, first.ts)
    [message] = slack.channel_messages(CHANNEL)
    assert message.text.startswith("Reminder: <@U07GA0SARA2> (primary) and <@U07GA0DAVE3>")
    assert "Mon 2026-03-09 09:00 PDT" in message.text


def test_without_slack_the_handoff_logs_and_succeeds(
    oncall_home: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> None:
    monkeypatch.delenv("ONCALL_SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("ONCALL_SLACK_API_URL", "http://127.0.0.1:9/api/")  # nothing there
    outcome = oncall_handoff(at=HANDOFF, watched=[])
    assert (outcome.ts, outcome.posted_now) == ("", False)


def test_recent_deployments_come_from_the_cluster(
    slack: FakeSlack, oncall_home: Path, example: Rotation
) -> None:
    from oncall_sandbox import Sandbox

    with Sandbox(home=oncall_home, time_scale=0.01, scenario="bad-deploy") as sandbox:
        sandbox.inject_fault()
        outcome = oncall_handoff(at=datetime.now(UTC))
    assert outcome.primary == example.on_call(datetime.now(UTC)).primary.name
    [message] = slack.channel_messages(CHANNEL)
    body = "\n".join(b["text"]["text"] for b in message.blocks)
    assert "gremlinsai/gremlinsai-backend-blue rev 3 (ghcr.io/gremlinsai/backend:1.5.0)" in body
    assert "gremlinsai/gremlinsai-backend-green" in body
