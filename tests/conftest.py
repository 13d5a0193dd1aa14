"""Shared fixtures: a real Prefect server, a real sandbox cluster, real PostgreSQL and Redis.

Prefect reads its settings when it is first imported, so the API URL of the test server
is put in the environment when this file is imported, before anything imports Prefect.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="oncall-test-prefect-"))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Before any conftest below this one (pytest loads those of the paths it is given early).
_PORT = free_port()
os.environ.update(
    PREFECT_API_URL=f"http://127.0.0.1:{_PORT}/api",
    PREFECT_HOME=str(_PREFECT_HOME / "client"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DO_NOT_TRACK="1",
    ONCALL_TEST_PREFECT_PORT=str(_PORT),
)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server (SQLite) for the whole session; yields its API URL."""
    from oncall.prefect_server import start_server, stop_server
    from oncall.settings import OncallSettings

    settings = OncallSettings(home=_PREFECT_HOME / "server-home")
    server = start_server(settings, port=int(os.environ["ONCALL_TEST_PREFECT_PORT"]))
    yield server.api_url
    stop_server(settings)


@pytest.fixture
def oncall_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ONCALL_HOME for one test, so flows and the CLI see the same state."""
    home = tmp_path / "oncall-home"
    monkeypatch.setenv("ONCALL_HOME", str(home))
    return home


# Imported after the environment above is set: it must not load Prefect's settings first.
from tests.fakes.slack_server import fake_slack  # noqa: E402, F401  (a shared fixture)
