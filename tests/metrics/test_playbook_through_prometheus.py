"""A playbook verifies through Prometheus when one is configured, not through the Service URL.

The GremlinsAI bad release, with ``ONCALL_PROMETHEUS_URL`` pointing at a real Prometheus that
scrapes the API Service under the labels a ServiceMonitor gives it: the playbook rolls back
(approved), and its verification's queries are those Prometheus logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from flows.naming import incident_run_name_for
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.drill_catalog import plan_drill
from tests.conftest import requires
from tests.playbooks.conftest import SCALE, Human
from tests.prometheus_daemon import PROMETHEUS, prometheus

pytestmark = requires(PROMETHEUS is not None, "prometheus")


def test_the_bad_release_is_verified_healed_by_prometheus(
    oncall_home: Path, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    query_log = tmp_path / "queries.jsonl"
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario="bad-deploy") as sandbox:
        plan = plan_drill("bad-deploy", sandbox, SCALE, approval_timeout_s=60)
        target = urlparse(sandbox.service_url("gremlinsai", "gremlinsai-service")).netloc
        config = f"""
global:
  scrape_interval: 500ms
  query_log_file: {query_log}
scrape_configs:
  - job_name: gremlinsai
    static_configs:
      - targets: ["{target}"]
        labels: {{namespace: gremlinsai, service: gremlinsai-service}}
"""
        with prometheus(config, tmp_path / "prometheus") as url:
            # The drill's own stand-in gives way to the worker's configured Prometheus.
            plan.config.prometheus_url = plan.config.prometheus_scrape_interval_s = None
            monkeypatch.setenv("ONCALL_PROMETHEUS_URL", url)
            monkeypatch.setenv("ONCALL_PROMETHEUS_SCRAPE_INTERVAL_S", "0.5")
            sandbox.inject_fault()
            alert = Alert.from_alertmanager(plan.rule.webhook(utcnow(), 1.0).alerts[0])
            human = Human(
                prefect_api, incident_run_name_for(alert), {"approve": True, "approver": "jane"}
            )
            human.start()
            state = plan.playbook(alert=alert, config=plan.config, return_state=True)
            human.join(5)
            assert human.error is None, human.error
    assert state.name == "Resolved", state.message
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))
    assert incident.status is IncidentStatus.RESOLVED
    asked = [json.loads(line)["params"]["query"] for line in query_log.read_text().splitlines()]
    selected = '{namespace="gremlinsai",service="gremlinsai-service"}'
    assert f"sum(increase(http_requests_total{selected}" in "\n".join(asked)
    errors = [q for q in asked if 'code=~"5.."' in q and "gremlinsai-service" in q]
    assert len(errors) >= plan.config.verify_checks  # every check of the verification
