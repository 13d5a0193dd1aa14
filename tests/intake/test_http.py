"""HTTP semantics of the intake: auth, malformed bodies, dead letters, dedup, attach, resolve."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.intake.conftest import (
    AUTH,
    JSON_AUTH,
    ONCALL,
    TOKEN,
    AppFactory,
    am_alert,
    am_message,
    resolved,
)

PROTECTED = [
    ("POST", "/v1/alerts/alertmanager"),
    ("POST", "/v1/alerts/pagerduty"),
    ("POST", "/v1/alerts/generic"),
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/inc-0000000000"),
    ("GET", "/v1/dead-letters"),
    ("GET", "/metrics"),
]
BAD_AUTH = {
    "missing": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "token prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "basic scheme": {"Authorization": f"Basic {TOKEN}"},
    "bare token": {"Authorization": TOKEN},
}


@pytest.fixture
def client(make_app: AppFactory, sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(sqlite_url, dead_letter_limit=5)) as c:
        yield c


def pd_body(event_type: str = "incident.triggered", **data: Any) -> bytes:
    incident = {
        "id": "Q1ABCDEF",
        "type": "incident",
        "title": "Checkout API down",
        "urgency": "high",
        "created_at": "2025-03-01T10:00:00Z",
        "service": {"id": "PSVC", "summary": "checkout"},
        **data,
    }
    event = {
        "id": f"evt-{event_type}-{incident['id']}",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": incident,
    }
    return json.dumps({"event": event}).encode()


def pd_sign(body: bytes, secret: str = "pd-secret") -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("case", sorted(BAD_AUTH))
def test_every_protected_route_refuses_bad_auth_with_401(
    client: TestClient, method: str, path: str, case: str
) -> None:
    response = client.request(method, path, headers=BAD_AUTH[case], json=am_message(am_alert()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text


def test_health_routes_need_no_token_and_bad_auth_is_counted(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")  # Prefect is deliberately unreachable here
    assert ready.status_code == 503
    assert ready.json()["store"] == "ok"
    assert ready.json()["prefect"].startswith("unreachable")
    client.post("/v1/alerts/alertmanager", json={})
    metrics = client.get("/metrics", headers=AUTH).text
    assert (
        'oncall_intake_requests_rejected_total{reason="unauthorized",source="alertmanager"} 1.0'
        in metrics
    )
    assert client.get("/docs").status_code == 200


def test_pagerduty_signatures(client: TestClient) -> None:
    body = pd_body()
    url = "/v1/alerts/pagerduty"
    for signature in (None, "v1=deadbeef", pd_sign(body, "other-secret"), pd_sign(body + b" ")):
        headers = dict(JSON_AUTH)
        if signature:
            headers["X-PagerDuty-Signature"] = signature
        response = client.post(url, content=body, headers=headers)
        assert response.status_code == 403, signature
    # During secret rotation PagerDuty sends several signatures: any one matching is enough.
    rotated = f"v1=0000, {pd_sign(body)}"
    ok = client.post(url, content=body, headers={**JSON_AUTH, "X-PagerDuty-Signature": rotated})
    assert ok.status_code == 202
    assert ok.json()["new"] == 1
    # The same delivery again (same event.id) is a no-op.
    again = client.post(url, content=body, headers={**JSON_AUTH, "X-PagerDuty-Signature": rotated})
    assert again.json()["duplicate_event"] is True
    done = pd_body("incident.resolved")
    gone = client.post(
        url, content=done, headers={**JSON_AUTH, "X-PagerDuty-Signature": pd_sign(done)}
    )
    assert gone.json()["resolved"] == 1
    (incident,) = client.get("/v1/incidents", headers=AUTH).json()
    assert incident["alert"]["labels"]["service"] == "checkout"
    assert incident["alert"]["labels"]["pagerduty_incident"] == "Q1ABCDEF"
    assert incident["alert_resolved_at"] is not None
    ack = pd_body("incident.acknowledged")
    ignored = client.post(
        url, content=ack, headers={**JSON_AUTH, "X-PagerDuty-Signature": pd_sign(ack)}
    )
    assert ignored.status_code == 202 and ignored.json()["new"] == 0


MALFORMED: list[tuple[str, str, bytes, int, str]] = [
    ("alertmanager", "empty", b"", 400, "body: empty"),
    ("alertmanager", "not json", b'{"version": "4",', 400, "invalid JSON at line 1"),
    ("alertmanager", "not utf-8", b"\xff\xfe{}", 400, "body: not UTF-8"),
    ("alertmanager", "array", b"[]", 422, "body: expected a JSON object"),
    (
        "alertmanager",
        "no alerts",
        b'{"version":"4","groupKey":"g","status":"firing","receiver":"r"}',
        422,
        "alerts: Field required",
    ),
    (
        "alertmanager",
        "wrong version",
        json.dumps({**am_message(am_alert()), "version": "5"}).encode(),
        422,
        "version: Input should be '4'",
    ),
    (
        "alertmanager",
        "bad fingerprint",
        json.dumps(am_message({**am_alert(), "fingerprint": "XYZ"})).encode(),
        422,
        "alerts.0.fingerprint",
    ),
    (
        "alertmanager",
        "no alertname",
        json.dumps(am_message({**am_alert(), "labels": {"service": "x"}})).encode(),
        422,
        "alerts.0.labels",
    ),
    (
        "alertmanager",
        "bad startsAt",
        json.dumps(am_message({**am_alert(), "startsAt": "yesterday"})).encode(),
        422,
        "alerts.0.startsAt",
    ),
    (
        "generic",
        "unknown field",
        b'{"alerts":[{"name":"X","starts_at":"2025-01-01T00:00:00Z","sevrity":"P1"}]}',
        422,
        "alerts.0.sevrity: Extra inputs are not permitted",
    ),
    ("generic", "no starts_at", b'{"alerts":[{"name":"X"}]}', 422, "alerts.0.starts_at"),
    ("generic", "empty list", b'{"alerts":[]}', 422, "alerts: List should have at least 1"),
    (
        "pagerduty",
        "no event id",
        json.dumps(
            {
                "event": {
                    "event_type": "incident.triggered",
                    "occurred_at": "2025-01-01T00:00:00Z",
                    "data": {},
                }
            }
        ).encode(),
        422,
        "event.id",
    ),
    (
        "pagerduty",
        "incident without created_at",
        pd_body(created_at=None),
        422,
        "event.data.created_at",
    ),
]


@pytest.mark.parametrize(
    ("source", "case", "body", "code", "message"), MALFORMED, ids=[m[1] for m in MALFORMED]
)
def test_malformed_bodies_are_refused_naming_the_field_and_dead_lettered(
    client: TestClient, source: str, case: str, body: bytes, code: int, message: str
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    if source == "pagerduty":
        headers["X-PagerDuty-Signature"] = pd_sign(body)
    response = client.post(f"/v1/alerts/{source}", content=body, headers=headers)
    assert response.status_code == code
    assert message in response.json()["detail"]
    (letter,) = client.get("/v1/dead-letters", headers=AUTH).json()
    assert letter["source"] == source
    assert letter["status_code"] == code
    assert message in letter["reason"]
    assert letter["body"] == body.decode("utf-8", errors="replace")


def test_too_large_body_is_413(make_app: AppFactory, sqlite_url: str) -> None:
    with TestClient(make_app(sqlite_url, max_body_bytes=2048)) as client:
        big = json.dumps(am_message(am_alert(note="x" * 4000)))
        response = client.post("/v1/alerts/alertmanager", content=big, headers=AUTH)
        assert response.status_code == 413
        assert "body:" in response.json()["detail"]


def test_dead_letters_are_bounded_and_listed_by_the_cli(
    client: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    for i in range(8):
        client.post("/v1/alerts/generic", content=f'{{"n": {i}'.encode(), headers=JSON_AUTH)
    letters = client.get("/v1/dead-letters", headers=AUTH).json()
    assert [json_body["body"] for json_body in letters] == [f'{{"n": {i}' for i in (7, 6, 5, 4, 3)]
    env = {**os.environ, "ONCALL_HOME": str(tmp_path / "home"), "ONCALL_DATABASE_URL": sqlite_url}
    listed = subprocess.run(
        [ONCALL, "intake", "dead-letters", "--json"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert [d["body"] for d in json.loads(listed.stdout)][:2] == ['{"n": 7', '{"n": 6']
    assert "invalid JSON" in json.loads(listed.stdout)[0]["reason"]


def test_store_unavailable_is_503_with_retry_after(make_app: AppFactory) -> None:
    down = "postgresql://postgres@127.0.0.1:9/test?connect_timeout=1"
    with TestClient(make_app(down, retry_after_s=7)) as client:
        response = client.post("/v1/alerts/alertmanager", json=am_message(am_alert()), headers=AUTH)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["store"].startswith("unavailable")


def test_resends_fold_into_one_occurrence_and_others_attach(
    make_app: AppFactory, store_url: str
) -> None:
    with TestClient(make_app(store_url)) as client:
        first = am_alert(severity="critical")
        service = first["labels"]["service"]
        for _ in range(3):  # repeat_interval, group changes, the HA peer
            response = client.post("/v1/alerts/alertmanager", json=am_message(first), headers=AUTH)
            assert response.status_code == 202
        second = am_alert("HighLatency", service=service)
        elsewhere = am_alert("HighLatency")
        body = client.post(
            "/v1/alerts/alertmanager", json=am_message(first, second, elsewhere), headers=AUTH
        ).json()
        assert (body["new"], body["deduplicated"], body["attached"]) == (1, 1, 1)

        incidents = client.get("/v1/incidents", headers=AUTH).json()
        assert len(incidents) == 2
        mine = next(i for i in incidents if i["alert"]["labels"]["service"] == service)
        assert mine["severity"] == "P1"
        assert mine["status"] == "triggered"
        assert mine["deployment"] == "high-api-error-rate/gremlinsai"
        opened, attached = mine["occurrences"]
        assert (opened["role"], opened["times_seen"]) == ("opened", 4)
        assert (attached["role"], attached["alert_name"]) == ("attached", "HighLatency")
        assert mine["last_seen_at"] >= opened["received_at"]
        shown = client.get(f"/v1/incidents/{mine['id']}", headers=AUTH).json()
        assert shown["occurrences"] == mine["occurrences"]
        assert client.get("/v1/incidents/inc-nope", headers=AUTH).status_code == 404

        # Resolved notifications: the incident's alert is resolved once all of them are.
        client.post("/v1/alerts/alertmanager", json=am_message(resolved(first)), headers=AUTH)
        assert (
            client.get(f"/v1/incidents/{mine['id']}", headers=AUTH).json()["alert_resolved_at"]
            is None
        )
        client.post("/v1/alerts/alertmanager", json=am_message(resolved(second)), headers=AUTH)
        after = client.get(f"/v1/incidents/{mine['id']}", headers=AUTH).json()
        assert after["alert_resolved_at"] is not None
        assert {o["status"] for o in after["occurrences"]} == {"resolved"}
        metrics = client.get("/metrics", headers=AUTH).text
        assert 'oncall_intake_alerts_deduplicated_total{source="alertmanager"} 3.0' in metrics
        assert 'oncall_intake_alerts_attached_total{source="alertmanager"} 1.0' in metrics


def test_generic_alerts_use_the_documented_schema(client: TestClient) -> None:
    alert = {
        "name": "DiskFull",
        "labels": {"service": "billing-db", "severity": "warning"},
        "starts_at": "2025-05-05T05:05:05",
    }
    first = client.post("/v1/alerts/generic", json={"alerts": [alert]}, headers=AUTH).json()
    again = client.post("/v1/alerts/generic", json={"alerts": [alert]}, headers=AUTH).json()
    assert (first["new"], again["deduplicated"]) == (1, 1)
    (incident,) = client.get("/v1/incidents", headers=AUTH).json()
    assert incident["deployment"] == "default-triage/default"  # no route for DiskFull
    assert incident["severity"] == "P3"
    schema = client.get("/openapi.json").json()
    generic = schema["paths"]["/v1/alerts/generic"]["post"]["requestBody"]
    assert generic["content"]["application/json"]["schema"]["properties"]["alerts"]
    assert "GenericAlert" in schema["components"]["schemas"]


def test_cli_incidents_list_and_show_print_what_the_api_returns(
    client: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    alert = am_alert(severity="critical")
    for _ in range(2):
        client.post("/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH)
    (api_view,) = client.get("/v1/incidents", headers=AUTH).json()
    env = {
        **os.environ,
        "ONCALL_HOME": str(tmp_path / "home"),
        "ONCALL_DATABASE_URL": sqlite_url,
        "COLUMNS": "200",
    }
    listed = subprocess.run(
        [ONCALL, "incidents", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [api_view]
    shown = subprocess.run(
        [ONCALL, "incidents", "show", api_view["id"]], env=env, capture_output=True, text=True
    )
    assert json.loads(shown.stdout) == api_view
    table = subprocess.run([ONCALL, "incidents", "list"], env=env, capture_output=True, text=True)
    assert api_view["id"] in table.stdout and "last seen" in table.stdout
