"""No alert lost, none doubled: Prefect down during a burst; the intake killed with SIGKILL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from oncall.intake.settings import IntakeSettings
from oncall.prefect_server import start_server, stop_server
from oncall.settings import OncallSettings
from tests.conftest import free_port
from tests.intake.conftest import (
    AUTH,
    AppFactory,
    Deployments,
    ServedIntake,
    am_alert,
    am_message,
    flow_runs,
    register_deployments,
    wait_for,
)


def _runs_per_incident(api_url: str, incident_ids: list[str]) -> dict[str, int]:
    return {i: len(flow_runs(api_url, f"incident:{i}")) for i in incident_ids}


def test_burst_while_prefect_is_down_is_dispatched_exactly_once_when_it_is_back(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    # A Prefect server of this test's own: the session's one is never stopped.
    server_settings = OncallSettings(home=tmp_path / "dedicated-prefect")
    port = free_port()
    server = start_server(server_settings, port=port)
    try:
        register_deployments(server.api_url)
        stop_server(server_settings)
        # The dispatcher's production pacing, not the tests' shortened one.
        defaults = IntakeSettings()
        app = make_app(
            sqlite_url,
            dispatch=True,
            prefect_api_url=server.api_url,
            backoff_initial_s=defaults.backoff_initial_s,
            backoff_max_s=defaults.backoff_max_s,
            poll_interval_s=defaults.poll_interval_s,
        )
        alerts = [am_alert(severity="critical") for _ in range(25)]
        with TestClient(app) as client:
            incident_ids: list[str] = []
            for alert in alerts:
                for _ in range(2):  # Alertmanager's retries and the HA peer
                    response = client.post(
                        "/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH
                    )
                    assert response.status_code == 202
                incident_ids += response.json()["incidents"]
            assert client.get("/readyz").json()["prefect"].startswith("unreachable")
            wait_for(
                lambda: client.get(f"/v1/incidents/{incident_ids[0]}", headers=AUTH).json()[
                    "dispatch_error"
                ],
                10,
                "a failed dispatch attempt",
            )
            time.sleep(2 * defaults.backoff_max_s)  # an outage long enough to reach the cap
            start_server(server_settings, port=port)

            def all_dispatched() -> bool:
                views = client.get("/v1/incidents?limit=100", headers=AUTH).json()
                return sum(1 for v in views if v["flow_run_id"]) == len(alerts)

            # The whole burst within 30 s of Prefect answering again.
            wait_for(all_dispatched, 30, "every alert dispatched after Prefect came back")
            metrics = client.get("/metrics", headers=AUTH).text
        assert set(_runs_per_incident(server.api_url, incident_ids).values()) == {1}
        assert 'oncall_intake_dispatch_errors_total{error="unreachable"}' in metrics
        assert 'oncall_intake_flow_runs_dispatched_total{kind="playbook"} 25.0' in metrics
    finally:
        stop_server(server_settings)


def test_sigkill_right_after_acknowledging_then_restart_dispatches_all(
    deployments: Deployments, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {"ONCALL_INTAKE_POLL_INTERVAL_S": "0.2", "ONCALL_INTAKE_BACKOFF_MAX_S": "1"}
    first = ServedIntake(home, env).start()
    alerts = [am_alert() for _ in range(40)]

    def send(alert: dict[str, Any]) -> str:
        response = httpx.post(
            f"{first.url}/v1/alerts/alertmanager", json=am_message(alert), headers=AUTH, timeout=10
        )
        assert response.status_code == 202, response.text
        incident: str = response.json()["incidents"][0]
        return incident

    try:
        with ThreadPoolExecutor(8) as pool:
            incident_ids = list(pool.map(send, alerts))
        first.kill()  # the instant the last 2xx is in: no shutdown, no flush
        before = _runs_per_incident(deployments.api_url, incident_ids)
        assert set(before.values()) <= {0, 1}

        second = ServedIntake(home, env).start()
        try:

            def dispatched() -> bool:
                views = httpx.get(
                    f"{second.url}/v1/incidents?limit=100", headers=AUTH, timeout=10
                ).json()
                return sum(1 for v in views if v["flow_run_id"]) == len(alerts)

            wait_for(dispatched, 60, "every acknowledged alert dispatched after the restart")
        finally:
            second.stop()
    finally:
        first.kill()
    after = _runs_per_incident(deployments.api_url, incident_ids)
    assert set(after.values()) == {1}, after
    print(f"dispatched before SIGKILL: {sum(before.values())}/{len(alerts)}")
