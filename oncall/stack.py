"""`oncall up`: the whole local stack in one process tree, with a clean shutdown.

Prefect server (SQLite under ONCALL_HOME, a child process), the warm runner for the
playbooks' flow runs, the intake service, and optionally the sandbox cluster.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from oncall.plugins import RunningSandbox
from oncall.prefect_auth import CLIENT_VARIABLE, auth_file
from oncall.prefect_server import PrefectServer, ensure_server, stop_server
from oncall.runner import WarmRunner, default_prefect_yaml, load_deployments
from oncall.settings import OncallSettings, secret_file


def intake_token(settings: OncallSettings) -> str:
    """The intake's bearer token: ONCALL_INTAKE_TOKEN, else one generated once under home."""
    if settings.intake_token is not None and settings.intake_token.get_secret_value():
        return settings.intake_token.get_secret_value()
    return secret_file(settings.home / "intake-token", lambda: secrets.token_urlsafe(32))


@dataclass
class Stack:
    """The running parts, stopped in reverse order."""

    server: PrefectServer
    runner: WarmRunner
    intake: Any
    threads: list[threading.Thread] = field(default_factory=list)
    sandbox: RunningSandbox | None = None

    def stop(self, settings: OncallSettings) -> None:
        """Stop intake, runner, sandbox; the Prefect server too if this stack started it."""
        self.intake.should_exit = True
        abandoned = self.runner.stop()
        for run_id in abandoned:
            print(f"flow run {run_id} was still in flight: marked Crashed; re-run it from the UI")
        for thread in self.threads:
            thread.join(15)
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.server.started:
            stop_server(settings)


def run_stack(
    settings: OncallSettings,
    console: Console,
    configured_api_url: str | None,
    host: str,
    port: int,
    scenario: str | None,
    prefect_yaml: Path | None = None,
) -> None:
    """Start everything, print where it is, and block until Ctrl-C or SIGTERM."""
    import uvicorn

    from oncall.intake.app import create_app

    token = intake_token(settings)
    settings = settings.model_copy(update={"intake_token": SecretStr(token)})
    with console.status("Prefect server: checking / starting (a cold start takes ~20 s)..."):
        server = ensure_server(settings, configured_api_url)
    sandbox = None
    if scenario:
        from oncall.plugins import sandbox_factory

        sandbox = sandbox_factory()(
            home=settings.home, time_scale=settings.sandbox_time_scale, scenario=scenario
        )
        sandbox.start()
    runner = WarmRunner(server.api_url, load_deployments(prefect_yaml or default_prefect_yaml()))
    runner.register()
    app = create_app(settings, prefect_api_url=server.api_url)
    intake = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    stack = Stack(server=server, runner=runner, intake=intake, sandbox=sandbox)
    stack.threads = [
        threading.Thread(target=runner.serve, name="runner", daemon=True),
        threading.Thread(target=intake.run, name="intake", daemon=True),
    ]
    # serve() registers again; harmless (deployments are upserted) and keeps one code path.
    for thread in stack.threads:
        thread.start()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not intake.started and not stopping.is_set():
        stopping.wait(0.1)
    _print_ready(console, stack, host, port, token, settings)
    try:
        stopping.wait()
    finally:
        console.print("Stopping ...")
        stack.stop(settings)
        console.print("Stopped.")


def _print_ready(
    console: Console, stack: Stack, host: str, port: int, token: str, settings: OncallSettings
) -> None:
    table = Table("part", "where", title="oncall is up")
    table.add_row("Prefect UI", stack.server.ui_url)
    if os.environ.get(CLIENT_VARIABLE):
        table.add_row(
            "Prefect login",
            f"the auth string in {auth_file(settings.home)} (or PREFECT_API_AUTH_STRING)",
        )
    table.add_row("intake", f"http://{host}:{port} (OpenAPI at /docs)")
    table.add_row("worker", f"{len(stack.runner.names)} deployments, warm")
    if stack.sandbox is not None:
        table.add_row(
            "sandbox", f"{stack.sandbox.api_url} (kubeconfig {stack.sandbox.kubeconfig_path})"
        )
    table.add_row("incident store", settings.store_url)
    console.print(table)
    console.print(
        f"Intake token in {settings.home / 'intake-token'} (or ONCALL_INTAKE_TOKEN). "
        "Fire an alert:\n"
        f"  curl -H 'Authorization: Bearer {token[:4]}...' -H 'Content-Type: application/json' "
        f"http://{host}:{port}/v1/alerts/alertmanager -d @alert.json\n"
        "Ctrl-C stops everything."
    )
