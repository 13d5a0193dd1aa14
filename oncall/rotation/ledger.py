"""What the hand-off already did, per rotation week, so a re-run repeats nothing.

One row per side effect (``handoff:<week start>:message``, ``...:usergroup:S...``):
a run claims the row before acting and marks it done after, in the incident store's
database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from oncall.errors import PermanentError, TransientError
from oncall.models import utcnow
from oncall.store import make_engine, transaction

metadata = MetaData()

handoff_steps = Table(
    "oncall_handoff_steps",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("state", String(10), nullable=False),  # claimed | done
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("detail", Text, nullable=False, default="{}"),
)

# A claim older than this belongs to a run that died mid-step; another run may take over.
CLAIM_LEASE = timedelta(minutes=10)


class HandoffLedger:
    """Claims and completions of hand-off steps."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
        except OperationalError as exc:
            raise TransientError(f"hand-off ledger unavailable: {exc.orig}") from exc

    def _tx(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine, "hand-off ledger")

    def done(self, key: str) -> dict[str, Any] | None:
        """The recorded result of a finished step, or None if it has not finished."""
        with self._tx() as conn:
            row = conn.execute(
                select(handoff_steps.c.state, handoff_steps.c.detail).where(
                    handoff_steps.c.key == key
                )
            ).first()
        if row is None or row.state != "done":
            return None
        detail: dict[str, Any] = json.loads(row.detail)
        return detail

    def claim(self, key: str) -> bool:
        """Take the step for this run; False if it is done or another run holds it."""
        now = utcnow()
        try:
            with self._tx() as conn:
                conn.execute(
                    handoff_steps.insert().values(key=key, state="claimed", claimed_at=now)
                )
            return True
        except PermanentError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        # The row exists: take it over only if its claim went stale.
        with self._tx() as conn:
            taken = conn.execute(
                update(handoff_steps)
                .where(
                    handoff_steps.c.key == key,
                    handoff_steps.c.state == "claimed",
                    handoff_steps.c.claimed_at < now - CLAIM_LEASE,
                )
                .values(claimed_at=now)
            )
        return bool(taken.rowcount)

    def complete(self, key: str, detail: dict[str, Any]) -> None:
        """Mark a claimed step done, with what it produced (message ts, members...)."""
        with self._tx() as conn:
            conn.execute(
                update(handoff_steps)
                .where(handoff_steps.c.key == key)
                .values(state="done", done_at=utcnow(), detail=json.dumps(detail, default=str))
            )

    def release(self, key: str) -> None:
        """Give a claim back after the step failed, so a retry can take it."""
        with self._tx() as conn:
            conn.execute(
                delete(handoff_steps).where(
                    handoff_steps.c.key == key, handoff_steps.c.state == "claimed"
                )
            )

    def run_once(self, key: str, step: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """Run ``step`` unless it already ran; returns its detail and whether it ran now."""
        if (detail := self.done(key)) is not None:
            return detail, False
        if not self.claim(key):
            if (detail := self.done(key)) is not None:
                return detail, False
            raise TransientError(f"{key}: another run is doing this step right now")
        try:
            detail = step()
        except BaseException:
            self.release(key)
            raise
        self.complete(key, detail)
        return detail, True

    def forget(self, prefix: str) -> int:
        """Delete the records of steps whose key starts with ``prefix`` (to redo a week)."""
        with self._tx() as conn:
            result = conn.execute(
                delete(handoff_steps).where(handoff_steps.c.key.startswith(prefix))
            )
        return int(result.rowcount)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def step_key(kind: str, week_start: datetime, step: str) -> str:
    """The ledger key of one step of one week's hand-off (or reminder)."""
    return f"{kind}:{week_start.isoformat()}:{step}"
