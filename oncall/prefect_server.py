"""A local Prefect server for drills and small teams: reuse one that answers, else start one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from oncall.errors import PermanentError, TransientError
from oncall.prefect_auth import CLIENT_VARIABLE, SERVER_VARIABLE
from oncall.settings import OncallSettings


@dataclass(frozen=True)
class PrefectServer:
    """Where the Prefect API and UI are, and whether this process started the server."""

    api_url: str
    started: bool = False
    pid: int | None = None

    @property
    def ui_url(self) -> str:
        """The UI's base URL."""
        return self.api_url.rstrip("/").removesuffix("/api")


def is_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    """True when a Prefect API answers its health check at ``api_url``."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text.strip() == "true"


def _pidfile(settings: OncallSettings) -> Path:
    return settings.prefect_home / "server.pid"


def server_env(settings: OncallSettings, port: int) -> dict[str, str]:
    """Environment of a local Prefect server: state under ONCALL_HOME, no telemetry.

    Closed when this process has an auth string (the `oncall` executable always does):
    the server then requires the one its clients send.
    """
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if auth := env.get(CLIENT_VARIABLE):
        env[SERVER_VARIABLE] = auth
    env.update(
        PREFECT_HOME=str(settings.prefect_home),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    return env


def start_server(
    settings: OncallSettings, port: int | None = None, wait_s: float = 120.0
) -> PrefectServer:
    """Start `prefect server start` in the background (it outlives this process) and wait."""
    port = port or settings.prefect_port
    api_url = f"http://127.0.0.1:{port}/api"
    if is_healthy(api_url):
        return PrefectServer(api_url=api_url)
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = settings.prefect_home / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=server_env(settings, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pidfile(settings).write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise PermanentError(
                f"Prefect server exited with code {proc.returncode} (log {log_path}):\n{tail}"
            )
        if is_healthy(api_url):
            return PrefectServer(api_url=api_url, started=True, pid=proc.pid)
        time.sleep(0.5)
    raise TransientError(f"Prefect server not healthy after {wait_s:.0f}s; see {log_path}")


def ensure_server(settings: OncallSettings, configured_api_url: str | None) -> PrefectServer:
    """The Prefect API to use: the configured one (it must answer), else a local one."""
    if configured_api_url:
        if not is_healthy(configured_api_url):
            raise TransientError(
                f"PREFECT_API_URL={configured_api_url} does not answer; start that server "
                "or unset PREFECT_API_URL to let oncall run a local one"
            )
        return PrefectServer(api_url=configured_api_url)
    return start_server(settings)


def _send_pending_logs_and_events() -> None:
    """Send what this process logged and emitted to Prefect while the server still answers.

    Prefect sends them from background queues, drained at interpreter exit: after a
    stop here, that drain finds no server and prints "Error logging to API".
    """
    if "prefect" not in sys.modules:
        return  # this process never talked to Prefect: nothing is queued
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5, at_exit=False)
    EventsWorker.drain_all(timeout=5, at_exit=False)


def stop_server(settings: OncallSettings, wait_s: float = 20.0) -> bool:
    """Stop the local server this tool started; False if none was running."""
    pidfile = _pidfile(settings)
    if not pidfile.exists():
        return False
    _send_pending_logs_and_events()
    pid = int(pidfile.read_text().strip())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
        _alive(pid)  # reap it
    pidfile.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    """True while the server process runs; reaps it when this process started it."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # started by another process: it is not ours to reap
        reaped = 0
    else:
        if reaped:
            return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
