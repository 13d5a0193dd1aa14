"""The automation off switch: what it blocks, for how long, and the CLI that sets it."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncall.cli import app
from oncall.errors import AutomationPaused, OncallError
from oncall.guards import Guard, GuardPolicy
from oncall.models import ActionKind
from oncall.pauses import ALL, PauseRequest, Pauses, parse_duration
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.escalation.conftest import ONCALL


def _pause(store: IncidentStore, service: str, seconds: float = 3600) -> None:
    Pauses(store).pause(
        PauseRequest(service=service, duration=timedelta(seconds=seconds), reason="r", by="lee")
    )


@pytest.fixture
def store(tmp_path: Path) -> IncidentStore:
    return IncidentStore(f"sqlite:///{tmp_path / 'oncall.db'}")


def test_durations_are_read_as_people_write_them() -> None:
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(" 90s ") == timedelta(seconds=90)
    for bad in ("", "2", "h", "2x", "-1h", "1h 30m"):
        with pytest.raises(OncallError, match="not a duration"):
            parse_duration(bad)


def test_a_pause_is_bounded_and_needs_a_reason_and_a_person() -> None:
    with pytest.raises(ValueError, match="7 days"):
        PauseRequest(service="ledger", duration=timedelta(days=8), reason="r", by="lee")
    with pytest.raises(ValueError, match="reason"):
        PauseRequest(service="ledger", duration=timedelta(hours=1), reason="", by="lee")
    with pytest.raises(ValueError, match="by"):
        PauseRequest(service="ledger", duration=timedelta(hours=1), reason="r", by="")


def test_the_guard_refuses_every_change_to_a_paused_service(
    store: IncidentStore, prefect_api: str
) -> None:
    from oncall.clients.prefect_api import PrefectApi

    guard = Guard(GuardPolicy(allowed_namespaces=["default"]), store, PrefectApi(prefect_api))
    guard.check_pause("ledger")  # nothing paused
    _pause(store, "payments-team")  # its catalog name
    guard.check_pause("ledger")
    guard.also_known_as = ("payments-team",)
    with pytest.raises(AutomationPaused, match="automation paused for payments-team"):
        guard.check_pause("ledger")
    Guard(GuardPolicy(), store, PrefectApi(prefect_api)).check_pause("search")  # not paused
    with (
        pytest.raises(AutomationPaused),
        guard.remediation(
            service="ledger",
            namespace="default",
            kind=ActionKind.RESTART,
            incident_id="INC-1",
            approval=None,
            target="deployment/ledger",
        ),
    ):
        pytest.fail("a paused service was changed")
    assert guard.spent("ledger", ActionKind.RESTART) == 0  # a refusal costs no budget

    Pauses(store).resume("payments-team", "lee")
    guard.check_pause("ledger")
    _pause(store, ALL)
    with pytest.raises(AutomationPaused, match="automation paused for all services"):
        guard.check_pause("search")


def test_a_pause_expires_by_itself(store: IncidentStore) -> None:
    _pause(store, "ledger", seconds=1.0)
    assert Pauses(store).blocking("ledger") is not None
    deadline = time.monotonic() + 10
    while Pauses(store).blocking("ledger") is not None:
        assert time.monotonic() < deadline, "the pause did not expire"
        time.sleep(0.1)
    assert Pauses(store).active() == []


def _oncall(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONCALL_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [ONCALL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_oncall_pause_paused_resume(tmp_path: Path) -> None:
    done = _oncall(
        tmp_path, "pause", "ledger", "--for", "2h", "--reason", "migration", "--by", "lee"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "automation paused for ledger until" in done.stdout
    assert "by lee: migration" in done.stdout
    listed = CliRunner().invoke(app, ["paused"], env={"ONCALL_HOME": str(tmp_path)})
    assert "automation paused for ledger" in listed.output
    store = IncidentStore(OncallSettings(home=tmp_path).store_url)
    (pause,) = Pauses(store).active()
    assert timedelta(hours=2) - (pause.until - pause.at) < timedelta(seconds=1)

    for args, message in [
        (("pause", "ledger", "--for", "9d", "--reason", "r", "--by", "lee"), "--for: "),
        (("pause", "ledger", "--for", "soon", "--reason", "r", "--by", "lee"), "not a duration"),
        (("pause", "ledger", "--for", "1h", "--by", "lee"), "--reason: "),
        (("pause", "--for", "1h", "--reason", "r", "--by", "lee"), "SERVICE, or --all"),
        (("resume", "ledger"), "--by"),
        (("resume", "search", "--by", "sam"), "no running pause of search"),
    ]:
        refused = CliRunner().invoke(app, list(args), env={"ONCALL_HOME": str(tmp_path)})
        assert refused.exit_code != 0, args
        assert message in refused.output, (args, refused.output)
    assert len(Pauses(store).active()) == 1  # nothing a refused command asked for was kept

    ended = _oncall(tmp_path, "resume", "ledger", "--by", "sam")
    assert ended.returncode == 0 and "1 pause(s) ended by sam" in ended.stdout
    assert Pauses(store).active() == []
    assert (
        "no pause" in CliRunner().invoke(app, ["paused"], env={"ONCALL_HOME": str(tmp_path)}).output
    )
