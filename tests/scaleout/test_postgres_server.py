"""Scale-out: Prefect server and incident store on PostgreSQL, a playbook run end to end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.models import Alert, Incident, IncidentStatus, utcnow
from oncall.prefect_server import server_env, start_server, stop_server
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.drill import drill_config, high_api_error_rate_rule
from tests.conftest import free_port
from tests.playbooks.conftest import Human

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"oncall_scaleout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_playbook_on_a_prefect_server_backed_by_postgresql(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = OncallSettings(home=tmp_path / "server")
    port = free_port()
    monkeypatch.setenv(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL",
        f"postgresql+asyncpg://postgres@127.0.0.1:5432/{postgres_database}",
    )
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" in server_env(settings, port)
    server = start_server(settings, port=port, wait_s=180)
    store_url = f"postgresql://postgres@127.0.0.1:5432/{postgres_database}"
    monkeypatch.setenv("ONCALL_DATABASE_URL", store_url)
    monkeypatch.setenv("ONCALL_HOME", str(tmp_path / "home"))
    try:
        with Sandbox(home=tmp_path / "home", time_scale=0.01, scenario="bad-deploy") as sandbox:
            sandbox.inject_fault()
            alert = Alert.from_alertmanager(
                high_api_error_rate_rule(0.01).webhook(utcnow(), 0.3).alerts[0]
            )
            human = Human(
                server.api_url,
                incident_run_name_for(alert),
                {"approve": True, "approver": "pg-operator"},
            )
            human.start()
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                state = high_api_error_rate(
                    alert=alert, config=drill_config(sandbox, 0.01, 60), return_state=True
                )
            human.join(5)
            assert human.error is None, human.error
        assert state.name == "Resolved"
        incident = IncidentStore(store_url).get(Incident.id_for(alert))
        assert incident.status is IncidentStatus.RESOLVED
        assert incident.approvals[0].approver == "pg-operator"
        # The Prefect server really kept its state in PostgreSQL.
        with psycopg.connect(store_url) as conn:
            runs = conn.execute(
                "SELECT count(*) FROM flow_run WHERE id = %s", (incident.flow_run_id,)
            ).fetchone()
        assert runs == (1,)
    finally:
        stop_server(settings)
        os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
