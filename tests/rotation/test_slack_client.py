"""The Slack client against the fake Slack Web API, over HTTP, through the real slack-sdk."""

from __future__ import annotations

import logging
import time

import pytest

from oncall.clients.slack import SlackClient, SlackRefused, SlackSettings, SlackUnavailable
from oncall.errors import PermanentError, TransientError
from tests.fakes.slack_server import FakeSlack

CHANNEL = "C0INCIDENT1"


def _client(slack: FakeSlack, token: str | None = None, retries: int = 2) -> SlackClient:
    return SlackClient(token or slack.token, base_url=slack.url, max_retries=retries)


def test_post_reply_and_update_land_as_slack_would_show_them(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]
    channel, ts = client.post_message("#incidents", "hello", blocks)
    assert channel == CHANNEL  # a name in, the channel ID back
    reply = client.post_message(channel, "a reply", thread_ts=ts)
    assert float(reply.ts) > float(ts)
    client.update_message(channel, ts, "hello, edited", blocks)
    top = fake_slack.channel_messages(CHANNEL)
    assert [(m.text, m.blocks, m.edited) for m in top] == [("hello, edited", blocks, True)]
    assert [m.thread_ts for m in fake_slack.messages] == [None, ts]
    # slack-sdk sends chat.* as JSON with the token in the Authorization header.
    call = fake_slack.calls("chat.postMessage")[0]
    assert call.headers["authorization"] == f"Bearer {fake_slack.token}"
    assert call.headers["content-type"].startswith("application/json")


def test_usergroup_membership_is_replaced(fake_slack: FakeSlack) -> None:
    fake_slack.add_usergroup("S0PRIMARY01", "oncall-primary", ["U0OLDUSER01"])
    client = _client(fake_slack)
    assert client.set_usergroup_members("S0PRIMARY01", ["U0NEWUSER01", "U0NEWUSER02"]) == [
        "U0NEWUSER01",
        "U0NEWUSER02",
    ]
    assert fake_slack.members("S0PRIMARY01") == ["U0NEWUSER01", "U0NEWUSER02"]
    # Form-encoded, users comma-separated, as the real API takes them.
    assert fake_slack.calls("usergroups.users.update")[0].args["users"] == "U0NEWUSER01,U0NEWUSER02"
    with pytest.raises(SlackRefused) as refused:
        client.set_usergroup_members("S0NOSUCH001", ["U0NEWUSER01"])
    assert refused.value.code == "no_such_subteam"


def test_rate_limit_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit_next("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    _client(fake_slack).post_message(CHANNEL, "after the limit")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [429, 200]
    assert len(fake_slack.messages) == 1


def test_rate_limit_beyond_the_retries_is_transient(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit_next("chat.postMessage", times=5, retry_after=0)
    with pytest.raises(TransientError) as caught:
        _client(fake_slack, retries=1).post_message(CHANNEL, "x")
    assert isinstance(caught.value, SlackUnavailable) and caught.value.code == "ratelimited"
    assert fake_slack.messages == []


def test_server_errors_are_retried_then_transient(fake_slack: FakeSlack) -> None:
    fake_slack.server_error_next("chat.postMessage", times=1)
    _client(fake_slack).post_message(CHANNEL, "through")
    fake_slack.server_error_next("chat.postMessage", times=3)
    with pytest.raises(TransientError):
        _client(fake_slack, retries=1).post_message(CHANNEL, "x")


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.post_message("#nope", "x"), "channel_not_found"),
        (lambda c: c.post_message(CHANNEL, ""), "no_text"),
        (lambda c: c.post_message(CHANNEL, "x", thread_ts="1.000100"), "thread_not_found"),
        (lambda c: c.update_message(CHANNEL, "1.000100", "x"), "message_not_found"),
    ],
)
def test_refusals_are_permanent(fake_slack: FakeSlack, call: object, code: str) -> None:
    with pytest.raises(PermanentError) as caught:
        call(_client(fake_slack))  # type: ignore[operator]
    assert isinstance(caught.value, SlackRefused) and caught.value.code == code


def test_bad_token_is_refused(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackRefused) as caught:
        _client(fake_slack, token="xoxb-wrong").post_message(CHANNEL, "x")
    assert caught.value.code == "invalid_auth"
    fake_slack.error_next("chat.postMessage", "account_inactive")
    with pytest.raises(SlackRefused, match="account_inactive"):
        _client(fake_slack).post_message(CHANNEL, "x")


def test_unreachable_slack_is_transient() -> None:
    with FakeSlack() as gone:
        url = gone.url
    client = SlackClient("xoxb-1", base_url=url, max_retries=0, timeout_s=2)
    with pytest.raises(TransientError):
        client.post_message(CHANNEL, "x")


def test_find_message_by_metadata(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    meta = {"event_type": "oncall_handoff", "event_payload": {"key": "week-1"}}
    posted = client.post_message(CHANNEL, "handoff", metadata=meta)
    client.post_message(CHANNEL, "noise")
    assert client.find_message(CHANNEL, "oncall_handoff", "week-1") == posted
    assert client.find_message(CHANNEL, "oncall_handoff", "week-2") is None
    assert client.find_message("#incidents", "oncall_handoff", "week-1") is None  # needs an ID


def test_without_a_token_messages_go_to_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ONCALL_SLACK_BOT_TOKEN", raising=False)
    client = SlackClient.from_settings(SlackSettings())
    with caplog.at_level(logging.INFO, logger="oncall.slack"):
        posted = client.post_message("#gremlinsai-alerts", "hello")
    assert posted == ("#gremlinsai-alerts", "")
    assert "would post to #gremlinsai-alerts" in caplog.text


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", "xoxb-123")
    monkeypatch.setenv("ONCALL_SLACK_APPROVERS", "U0AAAAAAA1, U0BBBBBBB2")
    monkeypatch.setenv("ONCALL_SLACK_API_URL", "http://127.0.0.1:1/api/")
    settings = SlackSettings()
    assert settings.approvers == ["U0AAAAAAA1", "U0BBBBBBB2"]
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == "xoxb-123"
    assert SlackClient.from_settings(settings).web.base_url == "http://127.0.0.1:1/api/"
