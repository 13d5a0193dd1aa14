"""The Slack endpoint under hostile input: capped before its signature, 4xx if malformed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from oncall.slack.interactivity import PATH
from tests.slack.conftest import Intake, slack_headers

MALFORMED = {
    "payload a list": "[1, 2]",
    "payload a string": '"block_actions"',
    "payload not JSON": "{type: block_actions",
    "payload nested 500 deep": "[" * 500 + "]" * 500,
    "an action a string": json.dumps(
        {"type": "block_actions", "user": {"id": "U1"}, "actions": ["approve"]}
    ),
    "actions an object": json.dumps(
        {"type": "block_actions", "user": {"id": "U1"}, "actions": {"a": 1}}
    ),
    "user a string": json.dumps({"type": "block_actions", "user": "U1", "actions": []}),
    "user without id": json.dumps({"type": "block_actions", "user": {}, "actions": []}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_signed_but_malformed_payloads_are_400(intake: Intake, case: str) -> None:
    body = urlencode({"payload": MALFORMED[case]}).encode()
    answer = intake.post(PATH, body, slack_headers(body))
    assert answer.status_code == 400, answer.text
    assert "malformed payload" in answer.text


def test_a_form_without_payload_is_400_and_other_types_are_415(intake: Intake) -> None:
    body = b"command=%2Foncall&text=hello"
    assert intake.post(PATH, body, slack_headers(body)).status_code == 400
    as_json = {**slack_headers(body), "Content-Type": "application/json"}
    assert intake.post(PATH, body, as_json).status_code == 415


def _chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def test_an_unsigned_huge_body_is_refused_before_it_is_read(intake: Intake) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    declared = intake.post(PATH, b"x" * (2 * 1024 * 1024), headers)
    assert declared.status_code == 413
    # Streamed without a Content-Length: cut off at the cap, not read to the end (100 MB).
    streamed = httpx.post(
        f"{intake.url}{PATH}", content=_chunks(100 * 1024 * 1024), headers=headers, timeout=30
    )
    assert streamed.status_code == 413
    assert "over 1048576 bytes" in streamed.json()["detail"]
