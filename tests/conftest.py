"""Shared fixtures: a real Prefect server, a real sandbox cluster, real PostgreSQL and Redis.

Prefect reads its settings when it is first imported, so the API URL of the test server
is put in the environment when this file is imported, before anything imports Prefect.
Under pytest-xdist every worker process imports this file, so each worker has a Prefect
server of its own (started on first use, stopped when the worker's session ends).

The suite runs the longest tests first (``tests/durations.json``, written by
``pytest --store-durations``), so that on several workers the last test to start is a short
one. See tests/README.md.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = bool(os.environ.get("CI"))
DURATIONS = Path(__file__).with_name("durations.json")


def requires(present: bool, what: str) -> pytest.MarkDecorator:
    """Skip where ``what`` is missing on a developer's machine; in CI, run (and fail)."""
    return pytest.mark.skipif(not present and not IN_CI, reason=f"{what} is not installed")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema in the shared PostgreSQL database (as a store URL), dropped afterwards.

    Tests on several workers share the database; each gets a schema of its own.
    """
    schema = f"test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"record each test's duration in {DURATIONS.name} (the longest run first)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: a slow end-to-end test (deselect with -m 'not e2e'; CI runs all)"
    )


# End to end: a whole playbook through Prefect and the sandbox, or processes of their own
# (worker, server, stack, Prometheus, Alertmanager, Chromium). `pytest -m "not e2e"` runs
# the rest in a few minutes; CI runs everything.
E2E_MODULES = (
    "tests/browser/test_ui_approval.py",
    "tests/deploy/test_prefect_deploy.py",
    "tests/escalation/test_playbook_timers.py",
    "tests/escalation/test_timers.py",
    "tests/intake/test_alertmanager_e2e.py",
    "tests/intake/test_durability.py",
    "tests/intake/test_two_intakes.py",
    "tests/metrics/test_alert_clearance.py",
    "tests/metrics/test_playbook_through_prometheus.py",
    "tests/metrics/test_prometheus_readings.py",
    "tests/metrics/test_standin_agrees.py",
    "tests/metrics/test_verify_analysis.py",
    "tests/playbooks/test_guard_matrix.py",
    "tests/playbooks/test_guards.py",
    "tests/playbooks/test_high_api_error_rate.py",
    "tests/playbooks/test_seed_playbooks.py",
    "tests/playbooks/test_verify_and_dependency_matrix.py",
    "tests/postmortem/test_post_incident.py",
    "tests/postmortem/test_trigger.py",
    "tests/runner/test_busy_resume.py",
    "tests/runner/test_warm_runner.py",
    "tests/scaleout/test_postgres_server.py",
    "tests/slack/test_drill_in_slack.py",
    "tests/slack/test_when_things_fail.py",
    "tests/test_cli_drill.py",
    "tests/test_stack.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the end-to-end modules; then longest first: with xdist's `load` distribution
    this is longest-processing-time scheduling, so the suite ends when its work does, not
    when a late long test does."""
    for item in items:
        if item.nodeid.split("::", 1)[0] in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
    known: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    default = sorted(known.values())[len(known) // 2] if known else 0.0
    items.sort(key=lambda item: -known.get(item.nodeid, default))


_seen: dict[str, float] = {}  # nodeid -> seconds of setup, call and teardown


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _seen[report.nodeid] = _seen.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not session.config.getoption("--store-durations") or hasattr(session.config, "workerinput"):
        return  # only the controller (or a run without xdist) writes the file
    # Merged into what is known, so a run of a few files keeps the figures of the others.
    known: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    known.update((k, round(v, 2)) for k, v in _seen.items())
    ordered = dict(sorted(known.items(), key=lambda kv: -kv[1]))
    DURATIONS.write_text(json.dumps(ordered, indent=1) + "\n")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A store URL in a fresh PostgreSQL schema."""
    with pg_schema() as url:
        yield url


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
