"""The dispatcher's side of the inbox: claim pending flow runs, record outcomes, track runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from oncall.intake.inbox import Inbox, as_utc
from oncall.intake.tables import dispatches, tracked_incidents
from oncall.lifecycle import post_incident_key
from oncall.models import utcnow


@dataclass(frozen=True)
class PendingRun:
    """A flow run the intake owes: its idempotency key, deployment and parameters."""

    key: str
    kind: str
    incident_id: str
    deployment: str
    parameters: dict[str, Any]
    created_at: datetime
    attempts: int


class Claim:
    """Pending runs claimed by this dispatcher; outcomes are written as they happen."""

    def __init__(self, queue: DispatchQueue, rows: list[PendingRun], conn: Connection | None):
        self.rows = rows
        self._queue, self._conn = queue, conn

    def _write(self, key: str, values: dict[str, Any]) -> None:
        stmt = update(dispatches).where(dispatches.c.key == key).values(values)
        if self._conn is not None:
            self._conn.execute(stmt)
            return
        with self._queue.inbox.tx() as conn:
            conn.execute(stmt)

    def done(self, run: PendingRun, flow_run_id: str, deployment: str) -> datetime:
        """The flow run exists in Prefect; return when that was recorded."""
        now = utcnow()
        self._write(
            run.key,
            {"dispatched_at": now, "flow_run_id": flow_run_id, "deployment": deployment},
        )
        if run.kind == "playbook":
            stmt = (
                update(tracked_incidents)
                .where(tracked_incidents.c.incident_id == run.incident_id)
                .values(flow_run_id=flow_run_id, deployment=deployment)
            )
            if self._conn is not None:
                self._conn.execute(stmt)
            else:
                with self._queue.inbox.tx() as conn:
                    conn.execute(stmt)
        return now

    def failed(self, run: PendingRun, error: str, retry_at: datetime) -> None:
        """Count a failed attempt and when to try again."""
        self._write(
            run.key,
            {"attempts": run.attempts + 1, "last_error": error[:2000], "next_attempt_at": retry_at},
        )

    def skipped(self, run: PendingRun, reason: str) -> None:
        """Nothing to start (e.g. no post-incident deployment): close the entry with the reason."""
        self._write(run.key, {"dispatched_at": utcnow(), "last_error": reason[:2000]})


class DispatchQueue:
    """Pending flow runs and the incidents whose runs are watched."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    @contextmanager
    def claim(self, limit: int) -> Iterator[Claim]:
        """Due pending runs, oldest first; on PostgreSQL row-locked (SKIP LOCKED) until exit."""
        query = (
            select(dispatches)
            .where(dispatches.c.dispatched_at.is_(None))
            .where(dispatches.c.next_attempt_at <= utcnow())
            .order_by(dispatches.c.created_at)
            .limit(limit)
        )
        if not self.inbox.is_postgres:
            # One writer, one dispatcher per SQLite file: no lock to hold across Prefect calls;
            # the idempotency key still keeps a second dispatcher from starting a second run.
            with self.inbox.tx(write=False) as conn:
                rows = [_pending(r) for r in conn.execute(query).all()]
            yield Claim(self, rows, None)
            return
        # The transaction (and its row locks) is kept across the Prefect calls: another
        # intake process skips these rows, and a crash releases them with the connection.
        with self.inbox.tx() as conn:
            rows = [_pending(r) for r in conn.execute(query.with_for_update(skip_locked=True))]
            yield Claim(self, rows, conn)

    def reroute(self, key: str, deployment: str, note: str) -> None:
        """Send a pending run to another deployment (its own is missing)."""
        with self.inbox.tx() as conn:
            conn.execute(
                update(dispatches)
                .where(dispatches.c.key == key)
                .values(deployment=deployment, last_error=note[:2000])
            )

    def pending_count(self) -> int:
        """Flow runs still owed."""
        return self.backlog()[0]

    def backlog(self) -> tuple[int, datetime | None]:
        """Flow runs still owed, and when the oldest of them was accepted."""
        with self.inbox.tx(write=False) as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(dispatches.c.created_at)).where(
                    dispatches.c.dispatched_at.is_(None)
                )
            ).one()
        return int(count), as_utc(oldest)

    def watched_runs(self) -> dict[str, str]:
        """Flow run id -> incident id, for incidents whose playbook has not finished."""
        with self.inbox.tx(write=False) as conn:
            rows = conn.execute(
                select(tracked_incidents.c.incident_id, tracked_incidents.c.flow_run_id)
                .where(tracked_incidents.c.run_finished_at.is_(None))
                .where(tracked_incidents.c.flow_run_id.is_not(None))
            ).all()
        return {r.flow_run_id: r.incident_id for r in rows}

    def record_run_state(self, incident_id: str, state: str, final: bool) -> None:
        """Remember the playbook run's state; a final state closes the incident to new alerts."""
        values: dict[str, Any] = {"run_state": state}
        if final:
            now = utcnow()
            values.update(run_finished_at=now, closed_at=now)
        with self.inbox.tx() as conn:
            conn.execute(
                update(tracked_incidents)
                .where(tracked_incidents.c.incident_id == incident_id)
                .values(values)
            )

    def queue_post_incident(self, deployment: str) -> list[str]:
        """Owe a post-incident run to every incident whose alert resolved and playbook ended."""
        due = and_(
            tracked_incidents.c.alert_resolved_at.is_not(None),
            tracked_incidents.c.run_finished_at.is_not(None),
            tracked_incidents.c.post_incident_key.is_(None),
        )
        queued: list[str] = []
        with self.inbox.tx() as conn:
            for row in conn.execute(select(tracked_incidents.c.incident_id).where(due)).all():
                key, now = post_incident_key(row.incident_id), utcnow()
                conn.execute(
                    self.inbox.insert_ignoring_duplicates(
                        dispatches,
                        "key",
                        key=key,
                        kind="post-incident",
                        incident_id=row.incident_id,
                        deployment=deployment,
                        parameters=json.dumps({"incident_id": row.incident_id}),
                        created_at=now,
                        next_attempt_at=now,
                        attempts=0,
                    )
                )
                conn.execute(
                    update(tracked_incidents)
                    .where(tracked_incidents.c.incident_id == row.incident_id)
                    .values(post_incident_key=key)
                )
                queued.append(row.incident_id)
        return queued


def _pending(row: Any) -> PendingRun:
    return PendingRun(
        key=row.key,
        kind=row.kind,
        incident_id=row.incident_id,
        deployment=row.deployment,
        parameters=json.loads(row.parameters),
        created_at=as_utc(row.created_at) or utcnow(),
        attempts=row.attempts,
    )
