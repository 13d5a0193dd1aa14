"""Dispatch to a real Prefect server: one flow run per occurrence, triage, post-incident."""

from __future__ import annotations

import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from oncall.routing import PlaybookRouter, Route
from tests.intake.conftest import (
    AUTH,
    AppFactory,
    Deployments,
    am_alert,
    am_message,
    flow_runs,
    resolved,
    wait_for,
)


def _incident(client: TestClient, incident_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/incidents/{incident_id}", headers=AUTH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_same_alert_three_times_starts_one_flow_run(
    make_app: AppFactory, store_url: str, deployments: Deployments
) -> None:
    app = make_app(store_url, dispatch=True, prefect_api_url=deployments.api_url)
    alert = am_alert(severity="critical")
    with TestClient(app) as client:
        ids = {
            client.post("/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH).json()[
                "incidents"
            ][0]
            for _ in range(3)
        }
        (incident_id,) = ids
        view = wait_for(
            lambda: (
                _incident(client, incident_id)["flow_run_id"] and _incident(client, incident_id)
            ),
            20,
            "the flow run",
        )
        # Re-sent once more after the run exists: still nothing new.
        client.post("/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH)
        app.state.dispatcher.wake()
        metrics = wait_for(
            lambda: (
                (text := client.get("/metrics", headers=AUTH).text)
                and 'oncall_intake_flow_runs_dispatched_total{kind="playbook"} 1.0' in text
                and text
            ),
            10,
            "the dispatched metric",
        )
    runs = flow_runs(deployments.api_url, f"incident:{incident_id}")
    assert len(runs) == 1
    (run,) = runs
    assert run["id"] == view["flow_run_id"]
    assert run["idempotency_key"] == view["occurrences"][0]["occurrence_key"]
    assert run["parameters"]["alert"]["fingerprint"] == alert["fingerprint"]
    assert run["parameters"]["config"]["namespace"] == "gremlinsai"  # deployment default kept
    assert view["deployment"] == "high-api-error-rate/gremlinsai"
    assert view["occurrences"][0]["times_seen"] == 3
    assert "oncall_intake_dispatch_lag_seconds_count 1.0" in metrics


def test_unknown_alert_goes_to_default_triage(
    make_app: AppFactory, sqlite_url: str, deployments: Deployments
) -> None:
    app = make_app(sqlite_url, dispatch=True, prefect_api_url=deployments.api_url)
    with TestClient(app) as client:
        body = client.post(
            "/v1/alerts/alertmanager", json=am_message(am_alert("NobodyKnowsMe")), headers=AUTH
        ).json()
        (incident_id,) = body["incidents"]
        wait_for(lambda: _incident(client, incident_id)["flow_run_id"], 20, "the triage run")
    (run,) = flow_runs(deployments.api_url, f"incident:{incident_id}")
    deployment = httpx.get(f"{deployments.api_url}/deployments/{run['deployment_id']}").json()
    assert deployment["name"] == "default"
    assert run["parameters"]["alert"]["name"] == "NobodyKnowsMe"


def test_missing_playbook_deployment_falls_back_to_triage_after_grace(
    make_app: AppFactory, sqlite_url: str, deployments: Deployments, tmp_path: Any
) -> None:
    from oncall.intake.app import create_app
    from oncall.intake.settings import IntakeSettings
    from oncall.settings import OncallSettings
    from tests.intake.conftest import TOKEN, fast_intake

    router = PlaybookRouter(routes=[Route(match={"alertname": "Orphan"}, deployment="no/such")])
    settings = OncallSettings(home=tmp_path, database_url=sqlite_url, intake_token=TOKEN)  # type: ignore[arg-type]
    intake: IntakeSettings = fast_intake(missing_deployment_grace_s=0.5)
    app = create_app(settings, intake, prefect_api_url=deployments.api_url, router=router)
    with TestClient(app) as client:
        body = client.post(
            "/v1/alerts/alertmanager", json=am_message(am_alert("Orphan")), headers=AUTH
        ).json()
        (incident_id,) = body["incidents"]
        view = wait_for(
            lambda: (v := _incident(client, incident_id))["flow_run_id"] and v, 20, "fallback"
        )
    assert view["deployment"] == "default-triage/default"


def test_resolved_after_the_playbook_finished_starts_the_post_incident_flow(
    make_app: AppFactory, store_url: str, deployments: Deployments
) -> None:
    app = make_app(store_url, dispatch=True, prefect_api_url=deployments.api_url)
    alert = am_alert()
    service = alert["labels"]["service"]
    with TestClient(app) as client:
        (incident_id,) = client.post(
            "/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH
        ).json()["incidents"]
        run_id = wait_for(lambda: _incident(client, incident_id)["flow_run_id"], 20, "the run")
        # While the playbook runs, another alert of the service attaches to the incident.
        other = am_alert("HighLatency", service=service)
        body = client.post("/v1/alerts/alertmanager", json=am_message(other), headers=AUTH).json()
        assert (body["attached"], body["incidents"]) == (1, [incident_id])

        client.post(
            "/v1/alerts/alertmanager",
            json=am_message(resolved(alert), resolved(other)),
            headers=AUTH,
        )
        view = _incident(client, incident_id)
        assert view["alert_resolved_at"] is not None
        assert view["post_incident_flow_run_id"] is None  # the playbook has not finished

        finished = httpx.post(
            f"{deployments.api_url}/flow_runs/{run_id}/set_state",
            json={"state": {"type": "COMPLETED", "name": "Resolved"}, "force": True},
        )
        assert finished.status_code in (200, 201), finished.text
        view = wait_for(
            lambda: (v := _incident(client, incident_id))["post_incident_flow_run_id"] and v,
            20,
            "the post-incident run",
        )
        assert view["flow_run_state"] == "COMPLETED"
        assert view["playbook_finished_at"] is not None

        # The incident is closed to new alerts now: the next one opens its own.
        later = am_alert("HighApiErrorRate", service=service, note="again")
        body = client.post("/v1/alerts/alertmanager", json=am_message(later), headers=AUTH).json()
        assert body["new"] == 1 and body["incidents"] != [incident_id]
    post = flow_runs(deployments.api_url, f"postmortem:{incident_id}")
    assert [r["id"] for r in post] == [view["post_incident_flow_run_id"]]
    assert post[0]["parameters"] == {"incident_id": incident_id}
    assert post[0]["idempotency_key"] == f"post-incident:{incident_id}"
    # Not tagged with the incident: a later resolution (PagerDuty, `oncall ack`) cancels
    # the incident's scheduled runs, and must not cancel its postmortem.
    assert f"incident:{incident_id}" not in post[0]["tags"]


@pytest.mark.parametrize("first", ["playbook", "intake"])
def test_one_post_incident_run_whichever_starts_it_first(
    make_app: AppFactory, store_url: str, deployments: Deployments, first: str
) -> None:
    """The playbook starts the post-incident run when it resolves; the intake when the
    alert's resolved notification arrives after the playbook finished: one run."""
    from oncall import lifecycle
    from oncall.clients.prefect_api import PrefectApi

    app = make_app(store_url, dispatch=True, prefect_api_url=deployments.api_url)
    alert = am_alert()
    prefect = PrefectApi(deployments.api_url)
    with TestClient(app) as client:
        (incident_id,) = client.post(
            "/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH
        ).json()["incidents"]
        run_id = wait_for(lambda: _incident(client, incident_id)["flow_run_id"], 20, "the run")
        by_playbook = None
        if first == "playbook":  # it resolved the incident before the alert did
            by_playbook = lifecycle.start_post_incident(prefect, incident_id)
        client.post("/v1/alerts/alertmanager", json=am_message(resolved(alert)), headers=AUTH)
        finished = httpx.post(
            f"{deployments.api_url}/flow_runs/{run_id}/set_state",
            json={"state": {"type": "COMPLETED", "name": "Resolved"}, "force": True},
        )
        assert finished.status_code in (200, 201), finished.text
        view = wait_for(
            lambda: (v := _incident(client, incident_id))["post_incident_flow_run_id"] and v,
            20,
            "the post-incident run",
        )
        if by_playbook is None:
            by_playbook = lifecycle.start_post_incident(prefect, incident_id)
    assert by_playbook is not None
    assert str(by_playbook.id) == view["post_incident_flow_run_id"]
    post = flow_runs(deployments.api_url, f"postmortem:{incident_id}")
    assert [r["id"] for r in post] == [view["post_incident_flow_run_id"]]


class LockedEveryOtherCreate:
    """A proxy in front of the real Prefect API that answers every second flow-run creation
    with the 503 a SQLite-backed Prefect server sends while its database is locked."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.creates, self.refused = upstream.rstrip("/"), 0, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.command == "POST" and self.path.endswith("/create_flow_run"):
                    proxy.creates += 1
                    if proxy.creates % 2 == 0:
                        proxy.refused += 1
                        self.send_response(503)
                        self.send_header("content-type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"exception_message": "database is locked"}')
                        return
                answer = httpx.request(
                    self.command,
                    proxy.upstream + self.path.removeprefix("/api"),
                    content=body,
                    headers={"content-type": self.headers.get("content-type", "")},
                    timeout=30,
                )
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers.get("content-type", ""))
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_backoff_starts_over_after_every_created_run(
    make_app: AppFactory,
    sqlite_url: str,
    deployments: Deployments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 12 runs, every second creation refused: 11 refusals. A backoff that kept growing
    # across them (0.5, 1, 2, 4, 8, 16, 30, 30 ... s) would need minutes; one that starts
    # over after each created run waits about 0.5 s per refusal.
    proxy = LockedEveryOtherCreate(deployments.api_url)
    app = make_app(
        sqlite_url,
        dispatch=True,
        prefect_api_url=proxy.url,
        backoff_initial_s=0.5,
        backoff_max_s=30.0,
    )
    try:
        with TestClient(app) as client:
            ids = [
                client.post(
                    "/v1/alerts/alertmanager", json=am_message(am_alert()), headers=AUTH
                ).json()["incidents"][0]
                for _ in range(12)
            ]
            with caplog.at_level(logging.WARNING, logger="oncall.intake.dispatcher"):
                wait_for(
                    lambda: all(_incident(client, i)["flow_run_id"] for i in ids), 60, "12 runs"
                )
    finally:
        proxy.close()
    assert proxy.refused >= 10
    paused = [
        (float(wait), int(failures))
        for wait, failures in re.findall(
            r"dispatch paused ([\d.]+)s \(failure (\d+) since the last created run\)", caplog.text
        )
    ]
    assert len(paused) >= 10, caplog.text
    # Every wait is exponential in the failures since the last created run (0.5 s * 2^(n-1)
    # plus up to 0.5 s of jitter), and after each created run it starts over: the proxy's
    # refusals come one after a creation, so nearly all are first failures. A busy machine
    # may add a real failure or two of its own (a second one in a row), no more.
    for wait, failures in paused:
        assert wait <= 0.5 * 2 ** (failures - 1) + 0.5, paused
    firsts = [wait for wait, failures in paused if failures == 1]
    assert len(firsts) >= len(paused) - 2 and len(firsts) >= 9, paused
