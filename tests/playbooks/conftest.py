"""Fixtures for playbook tests: a faulted sandbox, the seed's alert, a human at the pause."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oncall.clients.kube import KubeClient
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, utcnow
from oncall.playbooks import HighApiErrorRateConfig, HighErrorRateConfig
from oncall_sandbox import Sandbox
from oncall_sandbox.drill import drill_config, high_api_error_rate_rule
from tests.conftest import free_port

SCALE = 0.01
NAMESPACE = "gremlinsai"
BLUE = "gremlinsai-backend-blue"


def quick_high_error_rate_config(service_url: str, **overrides: Any) -> HighErrorRateConfig:
    """CRONOS "High Error Rate" against a drill's service, with the drills' short waits.

    No scenario drills this section by default, so tests aim it at the service-down one.
    """
    return HighErrorRateConfig(
        service_url=service_url,
        verify_checks=2,
        verify_window_s=0.5,
        verify_timeout_s=3,
        rollout_timeout_s=15,
        **overrides,
    )


@dataclass
class FaultedCluster:
    """A sandbox after the bad release, with clients the test inspects it through."""

    sandbox: Sandbox
    kube: KubeClient
    config: HighApiErrorRateConfig
    alert: Alert


@pytest.fixture
def faulted(oncall_home: Path, prefect_api: str) -> Iterator[FaultedCluster]:
    """The bad-deploy scenario after its fault, and the alert Alertmanager would send."""
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario="bad-deploy") as sandbox:
        sandbox.inject_fault()
        message = high_api_error_rate_rule(SCALE).webhook(utcnow(), 0.27)
        alert = Alert.from_alertmanager(message.alerts[0])
        kube = KubeClient(sandbox.kubeconfig_path)
        config = drill_config(sandbox, SCALE, approval_timeout_s=60)
        yield FaultedCluster(sandbox, kube, config, alert)
        kube.close()


class Human(threading.Thread):
    """Answers the approval form of one run through Prefect's resume API, as the UI does."""

    def __init__(self, api_url: str, run_name: str, answer: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.prefect, self.run_name, self.answer = PrefectApi(api_url), run_name, answer
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            paused = self.prefect.wait_for_pause(self.run_name, timeout_s=60)
            self.prefect.resume(paused.id, self.answer)
        except Exception as exc:
            self.error = exc


@pytest.fixture
def stopped_redis_url() -> str:
    """The URL of a real Redis that was started and then shut down."""
    port = free_port()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode:
        assert time.monotonic() < deadline, "redis did not start"
        time.sleep(0.1)
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    return f"redis://127.0.0.1:{port}/0"
