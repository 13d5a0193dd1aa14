"""Intake fixtures: app factories on SQLite and PostgreSQL, deployments, a served `oncall serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from oncall.alerting import label_fingerprint
from oncall.intake.app import create_app
from oncall.intake.settings import IntakeSettings
from oncall.settings import OncallSettings
from tests.conftest import free_port, pg_schema

TOKEN = "intake-test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
ONCALL = str(Path(sys.executable).parent / "oncall")


def fast_intake(**overrides: Any) -> IntakeSettings:
    """Intake settings with the dispatcher's waits shortened for tests."""
    values: dict[str, Any] = {
        "poll_interval_s": 0.2,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 1.0,
        "run_check_interval_s": 0.3,
        "pagerduty_secret": "pd-secret",
        "dead_letter_limit": 1000,
    }
    values.update(overrides)
    return IntakeSettings(**values)


def am_alert(
    name: str = "HighApiErrorRate",
    service: str | None = None,
    status: str = "firing",
    starts_at: datetime | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager puts it in a webhook (fresh service name by default)."""
    all_labels = {"alertname": name, "service": service or f"svc-{uuid.uuid4().hex[:8]}", **labels}
    starts = starts_at or datetime.now(UTC).replace(microsecond=0)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {all_labels['service']}"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": datetime.now(UTC).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": label_fingerprint(all_labels),
    }


def am_message(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook v4 message carrying ``alerts``."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "oncall",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


def resolved(alert: dict[str, Any]) -> dict[str, Any]:
    """The same occurrence, resolved."""
    return {**alert, "status": "resolved", "endsAt": datetime.now(UTC).isoformat()}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store."""
    return f"sqlite:///{tmp_path / 'store' / 'oncall.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'oncall.db'}"
        return
    with pg_schema() as url:
        yield url


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """Build an intake app on a given store; dispatch off unless asked."""

    def build(
        url: str, dispatch: bool = False, prefect_api_url: str = "http://127.0.0.1:9/api", **kw: Any
    ) -> FastAPI:
        settings = OncallSettings(
            home=tmp_path / "home", database_url=url, intake_token=SecretStr(TOKEN)
        )
        return create_app(
            settings, fast_intake(**kw), prefect_api_url=prefect_api_url, dispatch=dispatch
        )

    return build


@dataclass
class Deployments:
    """The deployments the intake dispatches to, registered on one Prefect server."""

    api_url: str
    playbook: str = "high-api-error-rate/gremlinsai"
    default: str = "default-triage/default"
    post_incident: str = "post-incident/default"


def register_deployments(api_url: str) -> Deployments:
    """Register the playbook and the stand-ins (no work pool: their runs stay Scheduled)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.high_api_error_rate import high_api_error_rate
    from oncall.playbooks import HighApiErrorRateConfig
    from tests.intake.standin_flows import default_triage, post_incident

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        high_api_error_rate.to_deployment(
            name="gremlinsai", parameters={"config": HighApiErrorRateConfig().model_dump()}
        ).apply()
        default_triage.to_deployment(name="default").apply()
        post_incident.to_deployment(name="default").apply()
    return Deployments(api_url)


@pytest.fixture(scope="session")
def deployments(prefect_api: str) -> Deployments:
    """The deployments on the session's Prefect server."""
    return register_deployments(prefect_api)


def flow_runs(api_url: str, tag: str) -> list[dict[str, Any]]:
    """Flow runs carrying ``tag``, as the Prefect API returns them."""
    response = httpx.post(
        f"{api_url}/flow_runs/filter",
        json={"flow_runs": {"tags": {"all_": [tag]}}, "limit": 200},
        timeout=10,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until ``predicate()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class ServedIntake:
    """`oncall serve` as a subprocess on a free port."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home, self.env = home, env
        self.log = home / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> ServedIntake:
        """Start and wait until /healthz answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ONCALL_HOME": str(self.home), "ONCALL_INTAKE_TOKEN": TOKEN}
        env.update(self.env)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [ONCALL, "serve", "--port", str(self.port), "--log-level", "warning"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"oncall serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"oncall serve did not answer: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
