"""The hand-off ledger on real SQLite and real PostgreSQL: each step runs once per week."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from oncall.errors import TransientError
from oncall.rotation.ledger import HandoffLedger
from tests.conftest import pg_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HandoffLedger]:
    """A ledger on SQLite and on PostgreSQL (a schema of its own)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'oncall.db'}"
        else:
            url = stack.enter_context(pg_schema())
        book = HandoffLedger(url)
        yield book
        book.close()


def test_a_step_runs_once(ledger: HandoffLedger) -> None:
    key = f"handoff:{uuid.uuid4()}:message"
    calls: list[int] = []

    def step() -> dict[str, object]:
        calls.append(1)
        return {"ts": "1.000100"}

    assert ledger.run_once(key, step) == ({"ts": "1.000100"}, True)
    assert ledger.run_once(key, step) == ({"ts": "1.000100"}, False)
    assert len(calls) == 1


def test_a_failed_step_can_be_retried(ledger: HandoffLedger) -> None:
    key = f"handoff:{uuid.uuid4()}:message"

    def boom() -> dict[str, object]:
        raise TransientError("slack down")

    with pytest.raises(TransientError):
        ledger.run_once(key, boom)
    assert ledger.run_once(key, lambda: {"ok": True}) == ({"ok": True}, True)


def test_a_step_claimed_by_another_run_is_not_repeated(ledger: HandoffLedger) -> None:
    key = f"handoff:{uuid.uuid4()}:message"
    assert ledger.claim(key)
    assert not ledger.claim(key)
    with pytest.raises(TransientError, match="another run"):
        ledger.run_once(key, lambda: {"twice": True})
    ledger.complete(key, {"ts": "2.000100"})
    assert ledger.done(key) == {"ts": "2.000100"}
    assert ledger.forget(key) == 1
