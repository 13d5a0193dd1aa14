"""Fixtures: fake Slack (with response_url) and PagerDuty, the intake served over HTTP, clicks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from oncall.intake.app import create_app
from oncall.intake.settings import IntakeSettings
from oncall.settings import OncallSettings
from tests.conftest import free_port
from tests.fakes.pagerduty_server import FakePagerDuty, fake_pagerduty  # noqa: F401
from tests.fakes.slack_server import Answer, FakeSlack, Message
from tests.playbooks.conftest import faulted  # noqa: F401  (the sandbox after the bad release)

CHANNEL = "C0INCIDENT1"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PD_SECRET = "pd-webhook-secret"
TOKEN = "intake-slack-test-token"
JANE, SAM, MALLORY = (
    ("U0JANEDOE01", "jane.doe"),
    ("U0SAMLEE001", "sam.lee"),
    ("U0MALLORY01", "mallory"),
)
APPROVERS_GROUP = "S0APPROVER1"


class InteractiveSlack(FakeSlack):
    """FakeSlack that also takes the posts made to an interaction's ``response_url``."""

    def __init__(self) -> None:
        super().__init__(channels={CHANNEL: "incidents"}, usergroups={APPROVERS_GROUP: "approvers"})
        self.ephemerals: list[dict[str, Any]] = []

    def response_url(self) -> str:
        """A fresh response_url, as Slack puts in each interaction payload (no token needed)."""
        return f"{self.url}response/T0FAKETEAM1/{time.monotonic_ns()}"

    def _answer(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> Answer:
        if not method.startswith("response/"):
            return super()._answer(method, args, headers)
        if not args.get("text") and not args.get("blocks"):
            return 200, {}, {"ok": False, "error": "no_text"}
        self.ephemerals.append(args)
        return 200, {}, {"ok": True}

    def incident_message(self) -> Message:
        """The one top-level message in the incidents channel."""
        (message,) = self.channel_messages(CHANNEL)
        return message

    def thread(self, ts: str) -> list[Message]:
        """Replies in a thread."""
        return [m for m in self.messages if m.thread_ts == ts]


@pytest.fixture
def slack() -> Iterator[InteractiveSlack]:
    """Fake Slack: #incidents (C0INCIDENT1) and an approvers user group with Sam in it."""
    fake = InteractiveSlack()
    with fake:
        fake.add_usergroup(APPROVERS_GROUP, "approvers", [SAM[0]])
        yield fake


@pytest.fixture
def configured(
    slack: InteractiveSlack,
    fake_pagerduty: FakePagerDuty,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack and PagerDuty configured in the environment, as an operator would."""
    monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("ONCALL_SLACK_API_URL", slack.url)
    monkeypatch.setenv("ONCALL_SLACK_CHANNEL", CHANNEL)
    monkeypatch.setenv("ONCALL_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("ONCALL_SLACK_APPROVERS", f"{JANE[0]},{APPROVERS_GROUP}")
    monkeypatch.setenv("ONCALL_PAGERDUTY_ROUTING_KEY", fake_pagerduty.routing_key)
    monkeypatch.setenv("ONCALL_PAGERDUTY_EVENTS_URL", fake_pagerduty.url)


@dataclass
class Intake:
    """The intake app served by uvicorn on a free port."""

    url: str
    server: uvicorn.Server

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST raw bytes."""
        return httpx.post(f"{self.url}{path}", content=body, headers=headers, timeout=10)


@pytest.fixture
def intake(configured: None, oncall_home: Path, prefect_api: str) -> Iterator[Intake]:
    """The real intake app (dispatch off) on the test's store, over HTTP."""
    settings = OncallSettings(home=oncall_home, intake_token=SecretStr(TOKEN))
    app = create_app(
        settings,
        IntakeSettings(pagerduty_secret=SecretStr(PD_SECRET)),
        prefect_api_url=prefect_api,
        dispatch=False,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "intake started")
    yield Intake(f"http://127.0.0.1:{port}", server)
    server.should_exit = True
    thread.join(10)


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until ``predicate()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def slack_headers(
    body: bytes, secret: str = SIGNING_SECRET, at: float | None = None
) -> dict[str, str]:
    """The headers Slack signs a request with (PROTOCOLS.md "Slack")."""
    ts = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def approval_buttons(message: Message) -> dict[str, dict[str, Any]]:
    """The message's buttons by action_id (empty once decided)."""
    return {
        element["action_id"]: element
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def block_actions(
    slack: InteractiveSlack, message: Message, action_id: str, user: tuple[str, str]
) -> bytes:
    """The form body Slack posts when ``user`` clicks a button of ``message``."""
    button = approval_buttons(message)[action_id]
    payload = {
        "type": "block_actions",
        "user": {"id": user[0], "username": user[1], "name": user[1], "team_id": "T0FAKETEAM1"},
        "api_app_id": "A0FAKEAPP01",
        "team": {"id": "T0FAKETEAM1"},
        "channel": {"id": message.channel, "name": "incidents"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "response_url": slack.response_url(),
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": next(b["block_id"] for b in message.blocks if b["type"] == "actions"),
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def pagerduty_webhook(event_type: str, incident_key: str, agent: dict[str, Any] | None) -> bytes:
    """A V3 webhook body about the PagerDuty incident opened with our dedup key."""
    event = {
        "id": f"01{time.monotonic_ns()}",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2025-03-01T10:05:00Z",
        "agent": agent,
        "client": None,
        "data": {
            "id": "Q2PDINCIDENT",
            "type": "incident",
            "title": "HighApiErrorRate on gremlinsai-backend",
            "status": event_type.rsplit(".", 1)[-1],
            "incident_key": incident_key,
            "urgency": "high",
            "created_at": "2025-03-01T10:00:00Z",
            "html_url": "https://gremlinsai.pagerduty.com/incidents/Q2PDINCIDENT",
            "service": {
                "id": "PSVC01",
                "type": "service_reference",
                "summary": "gremlinsai-backend",
            },
        },
    }
    return json.dumps({"event": event}).encode()


def pagerduty_headers(body: bytes, secret: str = PD_SECRET) -> dict[str, str]:
    """The intake's bearer token and PagerDuty's signature."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": f"v1={digest}",
    }
