"""Hostile bodies: always a 4xx naming the problem, never a 5xx, and nothing good lost.

Each class of body that once got a 500 (deep nesting, huge numbers, timestamps that
overflow in UTC, lone surrogates, NUL, over-long names) is sent on SQLite and PostgreSQL,
alone and next to a valid alert of the same message.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oncall.intake.bodies import MAX_DEPTH, nesting_depth
from tests.intake.conftest import (
    AUTH,
    JSON_AUTH,
    AppFactory,
    ServedIntake,
    am_alert,
    am_message,
)
from tests.intake.test_http import pd_body, pd_sign

AM = "/v1/alerts/alertmanager"


@pytest.fixture
def client(make_app: AppFactory, store_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(store_url)) as c:
        yield c


def dead_letters(client: TestClient) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = client.get("/v1/dead-letters", headers=AUTH).json()
    return letters


def post(client: TestClient, body: bytes | str, path: str = AM) -> Any:
    raw = body.encode() if isinstance(body, str) else body
    return client.post(path, content=raw, headers=JSON_AUTH)


def with_label(value: str) -> str:
    """An Alertmanager message whose one alert carries ``value`` as a label (raw JSON)."""
    alert = am_alert()
    text = json.dumps(am_message(alert))
    return text.replace('"service": ', f'"team": "{value}", "service": ', 1)


# (case, raw body, status, what the detail says)
WHOLE_BODY: list[tuple[str, str, int, str]] = [
    ("nested 1,000 deep", '{"a": ' * 1000 + "1" + "}" * 1000, 400, "deeper than 64"),
    ("arrays 100,000 deep", "[" * 100_000 + "]" * 100_000, 400, "deeper than 64"),
    (
        "integer of 5,000 digits",
        '{"version": "4", "truncatedAlerts": ' + "9" * 5000 + "}",
        400,
        "a number of 5000 characters",
    ),
    ("float overflow", '{"truncatedAlerts": 1e999}', 400, "overflows a double"),
    ("NaN", '{"truncatedAlerts": NaN}', 400, "NaN is not JSON"),
    ("lone surrogate label", with_label("\\ud800"), 422, "alerts.0.labels.team"),
    ("NUL in a label", with_label("a\\u0000b"), 422, "NUL character"),
    ("label value over 1024", with_label("v" * 1025), 422, "at most 1024 characters"),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "detail"), WHOLE_BODY, ids=[w[0] for w in WHOLE_BODY]
)
def test_hostile_bodies_are_4xx_naming_the_problem_and_dead_lettered(
    client: TestClient, case: str, body: str, code: int, detail: str
) -> None:
    response = post(client, body)
    assert response.status_code == code, response.text
    assert detail in response.json()["detail"]
    (letter,) = dead_letters(client)
    assert letter["status_code"] == code and detail in letter["reason"]
    assert "\x00" not in letter["body"]  # escaped, so PostgreSQL keeps it too
    assert letter["body"][:50] == body[:50].replace("\x00", "\\u0000")
    # The connection and the intake are fine afterwards.
    assert post(client, json.dumps(am_message(am_alert()))).status_code == 202


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert nesting_depth("[" * (MAX_DEPTH + 10)) == MAX_DEPTH + 1  # stops counting past it
    assert nesting_depth('"\\"[[[["') == 0


def test_timestamps_that_overflow_in_utc_are_refused_per_field(client: TestClient) -> None:
    late = {**am_alert(), "startsAt": "9999-12-31T23:59:59-23:59"}
    early = {**am_alert(), "endsAt": "0001-01-01T00:00:00+01:00"}
    good = am_alert()
    response = post(client, json.dumps(am_message(late, early, good)))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["new"] == 1
    assert [r["index"] for r in answer["rejected"]] == [0, 1]
    assert "alerts.0.startsAt" in answer["rejected"][0]["detail"]
    assert "out of range once converted to UTC" in answer["rejected"][0]["detail"]
    assert "alerts.1.endsAt" in answer["rejected"][1]["detail"]


HOSTILE_ALERTS: list[tuple[str, dict[str, Any], str]] = [
    ("lone surrogate", {"labels": {"alertname": "X", "team": "\ud800"}}, "labels.team"),
    ("NUL", {"annotations": {"summary": "a\x00b"}}, "NUL character"),
    ("alertname of 201", {"labels": {"alertname": "A" * 201, "service": "s"}}, "alertname"),
    ("service of 201", {"labels": {"alertname": "A", "service": "s" * 201}}, "labels.service"),
    ("job of 300", {"labels": {"alertname": "A", "job": "j" * 300}}, "labels.job"),
    ("no alertname", {"labels": {"service": "s"}}, "alertname is required"),
    ("65 labels", {"labels": {"alertname": "A", **{f"l{i}": "v" for i in range(64)}}}, "64"),
    ("epoch number", {"startsAt": 0}, "RFC 3339"),
    ("wrong type", {"labels": ["alertname"]}, "alerts.0.labels"),
    ("not an object", {"__replace__": "just a string"}, "alerts.0"),
]


@pytest.mark.parametrize(
    ("case", "patch", "detail"), HOSTILE_ALERTS, ids=[h[0] for h in HOSTILE_ALERTS]
)
def test_a_bad_alert_is_refused_alone_and_the_good_one_beside_it_is_kept(
    client: TestClient, case: str, patch: dict[str, Any], detail: str
) -> None:
    bad = patch["__replace__"] if "__replace__" in patch else {**am_alert(), **patch}
    good = am_alert()
    body = json.dumps({**am_message(good), "alerts": [bad, good]}, ensure_ascii=True)
    response = post(client, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["new"] == 1, answer
    (refused,) = answer["rejected"]
    assert refused["index"] == 0 and detail in refused["detail"], refused
    (incident,) = client.get("/v1/incidents", headers=AUTH).json()
    assert incident["alert"]["labels"]["service"] == good["labels"]["service"]
    (letter,) = dead_letters(client)
    assert letter["status_code"] == 422 and detail in letter["reason"]
    kept = json.loads(letter["body"])
    assert kept[0]["index"] == 0  # the refused alert itself is kept, escaped
    # Only bad alerts: the message is refused whole, and still kept.
    again = post(client, json.dumps({**am_message(good), "alerts": [bad]}, ensure_ascii=True))
    assert again.status_code == 422 and detail in again.json()["detail"]
    assert len(dead_letters(client)) == 2


def test_pagerduty_titles_past_200_characters_are_accepted(client: TestClient) -> None:
    title = "Checkout latency " + "x" * 400
    body = pd_body(title=title)
    headers = {**JSON_AUTH, "X-PagerDuty-Signature": pd_sign(body)}
    response = client.post("/v1/alerts/pagerduty", content=body, headers=headers)
    assert response.status_code == 202, response.text
    (incident,) = client.get("/v1/incidents", headers=AUTH).json()
    assert len(incident["alert"]["name"]) == 200 and incident["alert"]["name"].endswith("…")
    assert incident["alert"]["annotations"]["summary"] == title


def test_pagerduty_nul_in_a_title_is_a_422_not_a_500(client: TestClient) -> None:
    body = pd_body(title="down\x00now")
    headers = {**JSON_AUTH, "X-PagerDuty-Signature": pd_sign(body)}
    response = client.post("/v1/alerts/pagerduty", content=body, headers=headers)
    assert response.status_code == 422 and "NUL" in response.json()["detail"]
    assert dead_letters(client)[0]["source"] == "pagerduty"


def test_generic_timestamps_must_be_strings_and_ends_after_start(client: TestClient) -> None:
    base = {"name": "X", "starts_at": "2025-01-01T00:00:00Z"}
    zero = client.post(
        "/v1/alerts/generic", json={"alerts": [{**base, "ends_at": 0}]}, headers=AUTH
    )
    assert zero.status_code == 422 and "alerts.0.ends_at" in zero.json()["detail"]
    before = {**base, "status": "resolved", "ends_at": "2024-12-31T00:00:00Z"}
    early = client.post("/v1/alerts/generic", json={"alerts": [before]}, headers=AUTH)
    assert early.status_code == 422 and "ends_at is before starts_at" in early.json()["detail"]


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_declared_json_is_415_and_kept(client: TestClient, content_type: str) -> None:
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    body = json.dumps(am_message(am_alert())).encode()
    response = client.post(AM, content=body, headers=headers)
    assert response.status_code == 415
    assert "send application/json" in response.json()["detail"]
    (letter,) = dead_letters(client)
    assert letter["status_code"] == 415 and letter["body"] == body.decode()


def test_an_alertmanager_group_of_10000_alerts_is_accepted(client: TestClient) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = [
        am_alert("KubePodNotReady", service="payments", starts_at=now, pod=f"ledger-{i:05d}")
        for i in range(10_000)
    ]
    body = json.dumps(am_message(*alerts))
    assert len(body) > 3_000_000
    response = post(client, body)
    assert response.status_code == 202, response.text[:500]
    answer = response.json()
    assert answer["new"] == 1 and answer["attached"] == 9_999  # one service, one incident
    assert "rejected" not in answer


def test_openapi_documents_required_fields_and_every_status(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/v1/alerts/alertmanager", "/v1/alerts/generic", "/v1/alerts/pagerduty"):
        codes = set(schema["paths"][path]["post"]["responses"])
        assert {"202", "400", "401", "408", "413", "415", "422", "503"} <= codes, path
    assert "403" in schema["paths"]["/v1/alerts/pagerduty"]["post"]["responses"]
    alert = schema["components"]["schemas"]["AlertmanagerAlert"]
    assert {"status", "labels", "startsAt", "fingerprint"} <= set(alert["required"])
    assert alert["properties"]["labels"]["required"] == ["alertname"]


def _slow_upload(url: str, headers: dict[str, str], sent: bytes, declared: int) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {AM} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + sent)
        answer = b""
        while b"}" not in answer.partition(b"\r\n\r\n")[2]:  # until the JSON body is in
            chunk = sock.recv(65536)  # blocks until the intake answers
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_stalled_upload_gets_408_and_does_not_hold_the_intake(
    tmp_path: Path, sqlite_url: str
) -> None:
    served = ServedIntake(
        tmp_path / "home",
        {"ONCALL_DATABASE_URL": sqlite_url, "ONCALL_INTAKE_BODY_IDLE_TIMEOUT_S": "1"},
    ).start()
    try:
        started = time.monotonic()
        answer = _slow_upload(served.url, JSON_AUTH, b'{"version": "4"', declared=5000)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"upload stalled" in answer
        assert time.monotonic() - started < 20
    finally:
        served.stop()


def test_serve_warns_when_the_prefect_api_takes_anonymous_requests(
    tmp_path: Path, sqlite_url: str, prefect_api: str
) -> None:
    # The session's server is open (as a misconfigured production one would be).
    served = ServedIntake(
        tmp_path / "home", {"ONCALL_DATABASE_URL": sqlite_url, "PREFECT_API_URL": prefect_api}
    ).start()
    try:
        deadline = time.monotonic() + 15
        while "accepts requests without credentials" not in served.log.read_text():
            assert time.monotonic() < deadline, served.log.read_text()[-2000:]
            time.sleep(0.1)
        assert "PREFECT_SERVER_API_AUTH_STRING" in served.log.read_text()
    finally:
        served.stop()


def test_dispatch_lag_is_on_metrics_and_readyz(make_app: AppFactory, sqlite_url: str) -> None:
    # Dispatch off: the accepted alert's flow run stays owed, as while Prefect is behind.
    with TestClient(make_app(sqlite_url, dispatch_behind_s=0.2)) as client:
        assert client.get("/readyz").json()["dispatch"] == "ok"
        assert post(client, json.dumps(am_message(am_alert()))).status_code == 202
        time.sleep(0.5)
        ready = client.get("/readyz").json()
        assert ready["dispatch_pending"] == 1 and ready["dispatch_oldest_s"] >= 0.5
        assert ready["dispatch"].startswith("behind: 1 runs owed, oldest")
        metrics = client.get("/metrics", headers=AUTH).text
        (lag,) = [
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("oncall_intake_dispatch_oldest_pending_seconds ")
        ]
        assert lag >= 0.5
