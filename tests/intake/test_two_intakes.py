"""Scale-out: two intake processes on one PostgreSQL never dispatch the same alert twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.intake.conftest import (
    AUTH,
    Deployments,
    ServedIntake,
    am_alert,
    am_message,
    flow_runs,
    wait_for,
)


def _dispatched(intake: ServedIntake) -> float:
    text = httpx.get(f"{intake.url}/metrics", headers=AUTH, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "oncall_intake_flow_runs_dispatched_total"
        and sample.labels.get("kind") == "playbook"
    )


def test_two_intakes_on_one_postgresql_dispatch_each_alert_once(
    deployments: Deployments, pg_url: str, tmp_path: Path
) -> None:
    env = {"ONCALL_DATABASE_URL": pg_url, "ONCALL_INTAKE_POLL_INTERVAL_S": "0.1"}
    first = ServedIntake(tmp_path / "a", env).start()
    second = ServedIntake(tmp_path / "b", env).start()
    alerts = [am_alert() for _ in range(30)]

    def deliver(job: tuple[ServedIntake, dict[str, Any]]) -> str:
        intake, alert = job
        response = httpx.post(
            f"{intake.url}/v1/alerts/alertmanager",
            json=am_message(alert),
            headers=AUTH,
            timeout=30,
        )
        assert response.status_code == 202, response.text
        incident: str = response.json()["incidents"][0]
        return incident

    try:
        # Like an HA Alertmanager pair: every alert reaches both intakes, at the same time.
        jobs = [(intake, alert) for alert in alerts for intake in (first, second)]
        with ThreadPoolExecutor(16) as pool:
            incidents = list(pool.map(deliver, jobs))
        ids = sorted(set(incidents))
        assert len(ids) == len(alerts)  # one incident per alert, whichever intake took it

        def all_dispatched() -> bool:
            return _dispatched(first) + _dispatched(second) >= len(alerts)

        wait_for(all_dispatched, 60, "every alert dispatched by one of the intakes")
        runs = {i: len(flow_runs(deployments.api_url, f"incident:{i}")) for i in ids}
        assert set(runs.values()) == {1}, runs
        # Exactly one creation per alert across both processes: neither dispatched a twin.
        assert _dispatched(first) + _dispatched(second) == len(alerts)
    finally:
        first.stop()
        second.stop()
