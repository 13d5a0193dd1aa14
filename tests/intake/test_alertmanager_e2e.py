"""End to end with Debian's Prometheus and Alertmanager: fault -> rule -> webhook -> playbook.

Prometheus scrapes the sandbox's API service, the rule fires, Alertmanager delivers to the
intake with bearer auth, the intake dispatches the playbook's flow run, the run (executed
here in-process, as a worker would) rolls the bad release back, and the resolved
notification arrives.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from oncall.intake.app import create_app
from oncall.models import IncidentStatus
from oncall.routing import PlaybookRouter, Route
from oncall.settings import OncallSettings
from oncall_sandbox import Sandbox
from oncall_sandbox.drill import drill_config
from tests.conftest import free_port, requires
from tests.intake.conftest import AUTH, TOKEN, Deployments, fast_intake, wait_for
from tests.prometheus_daemon import PROMETHEUS, Daemon, compressed_rules, healthy

ALERTMANAGER = shutil.which("prometheus-alertmanager")
SCALE = 0.01

pytestmark = [
    requires(PROMETHEUS is not None, "prometheus"),
    requires(ALERTMANAGER is not None, "prometheus-alertmanager"),
]


def alertmanager_config(intake_url: str) -> str:
    """The receiver config the README shows, with the test's short timings."""
    return f"""
global:
  resolve_timeout: 5s
route:
  receiver: oncall
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: {intake_url}/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""


def prometheus_config(target: str, alertmanager: str, rules: Path) -> str:
    """Scrape the sandbox service every second, with the target labels a ServiceMonitor
    gives it; the shipped rules, compressed; alerts to the local Alertmanager."""
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{alertmanager}"]
scrape_configs:
  - job_name: gremlinsai-service
    static_configs:
      - targets: ["{target}"]
        labels: {{namespace: gremlinsai, service: gremlinsai-service}}
"""


@pytest.fixture
def served_intake(oncall_home: Path, deployments: Deployments) -> Iterator[tuple[str, Any]]:
    """The intake on a free port (uvicorn in a thread), routing HighApiErrorRate to `e2e`."""
    deployment = f"high-api-error-rate/e2e-{uuid.uuid4().hex[:6]}"
    router = PlaybookRouter(
        routes=[Route(match={"alertname": "HighApiErrorRate"}, deployment=deployment)]
    )
    settings = OncallSettings(home=oncall_home, intake_token=SecretStr(TOKEN))
    app = create_app(settings, fast_intake(), prefect_api_url=deployments.api_url, router=router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the intake to listen")
    yield f"http://127.0.0.1:{port}", deployment
    server.should_exit = True
    thread.join(10)


def test_prometheus_rule_fires_alertmanager_delivers_playbook_runs_resolved_arrives(
    oncall_home: Path, served_intake: tuple[str, str], deployments: Deployments, tmp_path: Path
) -> None:
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.high_api_error_rate import high_api_error_rate

    intake_url, deployment = served_intake
    daemons: list[Daemon] = []
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario="bad-deploy") as sandbox:
        config = drill_config(sandbox, SCALE, approval_timeout_s=60)
        config.guard.require_approval = []  # the run is executed unattended below
        with temporary_settings(updates={PREFECT_API_URL: deployments.api_url}):
            high_api_error_rate.to_deployment(
                name=deployment.split("/")[1], parameters={"config": config.model_dump()}
            ).apply()
        target = urlparse(sandbox.service_url("gremlinsai", "gremlinsai-service")).netloc
        am_port, prom_port = free_port(), free_port()
        (tmp_path / "am.yml").write_text(alertmanager_config(intake_url))
        rules = tmp_path / "rules.yaml"
        rules.write_text(compressed_rules(SCALE, min_range_s=5))  # the shipped rules
        (tmp_path / "prom.yml").write_text(prometheus_config(target, f"127.0.0.1:{am_port}", rules))
        try:
            daemons.append(
                Daemon(
                    [
                        str(ALERTMANAGER),
                        f"--config.file={tmp_path / 'am.yml'}",
                        f"--storage.path={tmp_path / 'am-data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                    ],
                    tmp_path / "alertmanager.log",
                )
            )
            daemons.append(
                Daemon(
                    [
                        str(PROMETHEUS),
                        f"--config.file={tmp_path / 'prom.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    tmp_path / "prometheus.log",
                )
            )
            wait_for(
                lambda: (
                    healthy(f"http://127.0.0.1:{prom_port}/-/ready")
                    and healthy(f"http://127.0.0.1:{am_port}/-/ready")
                ),
                30,
                "Prometheus and Alertmanager",
            )
            time.sleep(3)  # a baseline of healthy scrapes
            sandbox.inject_fault()

            def incident() -> dict[str, Any] | None:
                views = httpx.get(f"{intake_url}/v1/incidents", headers=AUTH).json()
                return next((v for v in views if v["flow_run_id"]), None)

            opened = wait_for(incident, 60, "the alert to fire, arrive and be dispatched")
            assert opened["alert"]["name"] == "HighApiErrorRate"
            assert opened["alert"]["labels"]["service"] == "gremlinsai-backend"
            assert opened["deployment"] == deployment

            # What a worker would do with the run the intake created.
            with get_client(sync_client=True) as client:
                flow_run = client.read_flow_run(opened["flow_run_id"])
            parameters = high_api_error_rate.validate_parameters(flow_run.parameters)
            state = run_flow(
                high_api_error_rate, flow_run=flow_run, parameters=parameters, return_type="state"
            )
            assert state.name == "Resolved", state.message  # type: ignore[union-attr]

            def resolved() -> dict[str, Any] | None:
                view: dict[str, Any] = httpx.get(
                    f"{intake_url}/v1/incidents/{opened['id']}", headers=AUTH
                ).json()
                return (
                    view
                    if view["alert_resolved_at"] and view["post_incident_flow_run_id"]
                    else None
                )

            final = wait_for(resolved, 60, "the resolved notification and the post-incident run")
        finally:
            for daemon in daemons:
                daemon.stop()
    assert final["status"] == IncidentStatus.RESOLVED
    assert final["flow_run_state"] == "COMPLETED"
    assert [o["status"] for o in final["occurrences"]] == ["resolved"]
    assert final["occurrences"][0]["times_seen"] >= 2  # firing, then resolved
