"""The durable inbox: each alert occurrence committed once, re-sends folded into last-seen."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Insert, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from oncall.errors import NotFoundError, PermanentError, TransientError
from oncall.intake.tables import (
    dead_letters,
    dispatches,
    heartbeat,
    intake_metadata,
    occurrences,
    seen_events,
    tracked_incidents,
)
from oncall.models import Alert, Incident, Severity, utcnow
from oncall.store import IncidentStore, make_engine


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything the intake writes is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Accepted:
    """What one webhook message did to the inbox."""

    new: int = 0
    deduplicated: int = 0
    attached: int = 0
    resolved: int = 0
    duplicate_event: bool = False
    opened: list[tuple[str, Alert, str]] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The 202 body."""
        return {
            "new": self.new,
            "deduplicated": self.deduplicated,
            "attached": self.attached,
            "resolved": self.resolved,
            "duplicate_event": self.duplicate_event,
            "incidents": sorted(set(self.incidents)),
        }


@dataclass(frozen=True)
class Message:
    """The alerts of one webhook delivery, and its delivery id when the source has one."""

    alerts: list[Alert]
    source: str
    event_id: str | None = None


class Inbox:
    """The intake's tables in the incident store's database (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # SQLite has one writer; queueing in-process beats its sleeping busy handler.
        self._write_lock = threading.Lock()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._store: IncidentStore | None = None

    def close(self) -> None:
        """Release the connection pools."""
        self.engine.dispose()
        if self._store is not None:
            self._store.engine.dispose()

    def ensure_schema(self) -> None:
        """Create the tables once the database answers; TransientError while it does not."""
        if self._schema_ready:
            return
        with self._schema_lock, self._errors():
            if not self._schema_ready:
                intake_metadata.create_all(self.engine)
                self._schema_ready = True

    @property
    def store(self) -> IncidentStore:
        """The incident store on the same database, opened when first needed."""
        if self._store is None:
            with self._schema_lock:  # two threads creating the tables at once would collide
                if self._store is None:
                    self._store = IncidentStore(self.url)
        return self._store

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise TransientError(f"intake store unavailable: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise TransientError(f"intake store connection lost: {exc.orig}") from exc
            raise PermanentError(f"intake store error: {exc}") from exc
        except SQLAlchemyError as exc:
            raise PermanentError(f"intake store error: {exc}") from exc

    @contextmanager
    def tx(self, write: bool = True) -> Iterator[Connection]:
        """One committed transaction; store errors become TransientError/PermanentError."""
        self.ensure_schema()
        lock = self._write_lock if write and not self.is_postgres else nullcontext()
        with lock, self._errors(), self.engine.begin() as conn:
            yield conn

    def insert_ignoring_duplicates(self, table: Table, conflict: str, /, **values: Any) -> Insert:
        """INSERT ... ON CONFLICT (key) DO NOTHING in this database's dialect."""
        dialect: Any = postgresql if self.is_postgres else sqlite
        # RETURNING tells whether a row went in; rowcount does not, reliably, on psycopg.
        stmt: Insert = (
            dialect.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[conflict])
            .returning(table.c[conflict])
        )
        return stmt

    def accept(
        self,
        alerts: list[Alert],
        source: str,
        route: Callable[[Alert], str],
        event_id: str | None = None,
    ) -> Accepted:
        """Commit every alert of one message in one transaction; return what happened."""
        return self.accept_batch([Message(alerts, source, event_id)], route)[0]

    def accept_batch(
        self, messages: list[Message], route: Callable[[Alert], str]
    ) -> list[Accepted]:
        """Commit several messages in one transaction (group commit): all or none."""
        results = []
        with self.tx() as conn:
            for message in messages:
                result = Accepted()
                results.append(result)
                if message.event_id is not None:
                    seen = self.insert_ignoring_duplicates(
                        seen_events,
                        "event_id",
                        event_id=message.event_id,
                        source=message.source,
                        received_at=utcnow(),
                    )
                    if conn.execute(seen).first() is None:
                        result.duplicate_event = True
                        continue
                for alert in message.alerts:
                    self._accept_one(conn, alert, message.source, route, result)
        return results

    def _accept_one(
        self,
        conn: Connection,
        alert: Alert,
        source: str,
        route: Callable[[Alert], str],
        result: Accepted,
    ) -> None:
        now = utcnow()
        key = alert.occurrence_key
        resolved_at = (alert.ends_at or now) if alert.status == "resolved" else None
        # Insert first: the write serialises concurrent copies (HA pairs, retries) of one alert.
        inserted = conn.execute(
            self.insert_ignoring_duplicates(
                occurrences,
                "occurrence_key",
                occurrence_key=key,
                role="unlinked",
                source=source,
                alert_name=alert.name,
                service=alert.service,
                status=alert.status,
                alert=alert.model_dump_json(),
                received_at=now,
                last_seen_at=now,
                times_seen=1,
                resolved_at=resolved_at,
            )
        ).first()
        if inserted is None:
            self._seen_again(conn, alert, now, result)
            return
        if self.is_postgres:
            # Two new alerts of one service must not both find "no open incident".
            conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(alert.service))))
        open_id = conn.execute(
            select(tracked_incidents.c.incident_id)
            .where(tracked_incidents.c.service == alert.service)
            .where(tracked_incidents.c.closed_at.is_(None))
            .order_by(tracked_incidents.c.opened_at.desc())
            .limit(1)
        ).scalar()
        if alert.status == "resolved":
            # Resolved before we ever saw it firing: keep it, start nothing.
            result.resolved += 1
            if open_id is not None:
                self._link(conn, key, open_id, "attached", now)
                self._maybe_alert_resolved(conn, open_id, now)
                result.incidents.append(open_id)
            return
        if open_id is not None:
            self._link(conn, key, open_id, "attached", now)
            conn.execute(
                update(tracked_incidents)
                .where(tracked_incidents.c.incident_id == open_id)
                .values(alert_resolved_at=None)
            )
            result.attached += 1
            result.incidents.append(open_id)
            return
        incident_id, deployment = Incident.id_for(alert), route(alert)
        conn.execute(
            tracked_incidents.insert().values(
                incident_id=incident_id,
                service=alert.service,
                deployment=deployment,
                opened_at=now,
                last_seen_at=now,
            )
        )
        conn.execute(
            dispatches.insert().values(
                key=key,
                kind="playbook",
                incident_id=incident_id,
                deployment=deployment,
                parameters=json.dumps({"alert": alert.model_dump(mode="json")}),
                created_at=now,
                next_attempt_at=now,
                attempts=0,
            )
        )
        self._link(conn, key, incident_id, "opened", now)
        result.new += 1
        result.opened.append((incident_id, alert, deployment))
        result.incidents.append(incident_id)

    def _seen_again(self, conn: Connection, alert: Alert, now: datetime, result: Accepted) -> None:
        key = alert.occurrence_key
        row = conn.execute(
            select(occurrences.c.incident_id, occurrences.c.resolved_at).where(
                occurrences.c.occurrence_key == key
            )
        ).one()
        values: dict[str, Any] = {
            "last_seen_at": now,
            "times_seen": occurrences.c.times_seen + 1,
        }
        newly_resolved = alert.status == "resolved" and row.resolved_at is None
        if newly_resolved:
            values.update(status="resolved", resolved_at=alert.ends_at or now)
        conn.execute(update(occurrences).where(occurrences.c.occurrence_key == key).values(values))
        if newly_resolved:
            result.resolved += 1
        else:
            result.deduplicated += 1
        if row.incident_id is not None:
            result.incidents.append(row.incident_id)
            conn.execute(
                update(tracked_incidents)
                .where(tracked_incidents.c.incident_id == row.incident_id)
                .values(last_seen_at=now)
            )
            if newly_resolved:
                self._maybe_alert_resolved(conn, row.incident_id, now)

    def _link(self, conn: Connection, key: str, incident_id: str, role: str, now: datetime) -> None:
        conn.execute(
            update(occurrences)
            .where(occurrences.c.occurrence_key == key)
            .values(incident_id=incident_id, role=role)
        )
        conn.execute(
            update(tracked_incidents)
            .where(tracked_incidents.c.incident_id == incident_id)
            .values(last_seen_at=now)
        )

    def _maybe_alert_resolved(self, conn: Connection, incident_id: str, now: datetime) -> None:
        firing = conn.execute(
            select(func.count())
            .select_from(occurrences)
            .where(occurrences.c.incident_id == incident_id)
            .where(occurrences.c.status == "firing")
        ).scalar_one()
        if firing == 0:
            conn.execute(
                update(tracked_incidents)
                .where(tracked_incidents.c.incident_id == incident_id)
                .where(tracked_incidents.c.alert_resolved_at.is_(None))
                .values(alert_resolved_at=now)
            )

    def ensure_incident(self, incident_id: str, alert: Alert, deployment: str) -> Incident:
        """The incident in the store, created if missing (idempotent, safe to race)."""
        store = self.store
        try:
            return store.get(incident_id)
        except NotFoundError:
            pass
        incident = Incident(
            id=incident_id,
            alert=alert,
            severity=Severity.from_labels(alert.labels),
            playbook=deployment.split("/", 1)[0],
        )
        try:
            return store.create(incident)
        except PermanentError:
            return store.get(incident_id)  # created meanwhile by the dispatcher or the flow

    def dead_letter(
        self, source: str, status_code: int, reason: str, content_type: str, body: str, keep: int
    ) -> None:
        """Keep a refused body with the reason; only the newest ``keep`` are kept."""
        with self.tx() as conn:
            new_id = conn.execute(
                dead_letters.insert().values(
                    received_at=utcnow(),
                    source=source,
                    status_code=status_code,
                    reason=reason,
                    content_type=content_type[:200],
                    body=body,
                )
            ).inserted_primary_key
            if new_id is not None and new_id[0] is not None and int(new_id[0]) > keep:
                conn.execute(delete(dead_letters).where(dead_letters.c.id <= int(new_id[0]) - keep))

    def list_dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest refused bodies first."""
        with self.tx(write=False) as conn:
            rows = conn.execute(
                select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
            ).all()
        return [{**row._asdict(), "received_at": as_utc(row.received_at)} for row in rows]

    def beat(self) -> None:
        """Write one row: proves the store takes writes right now."""
        with self.tx() as conn:
            row = self.insert_ignoring_duplicates(heartbeat, "id", id=1, at=utcnow())
            if conn.execute(row).first() is None:
                conn.execute(update(heartbeat).where(heartbeat.c.id == 1).values(at=utcnow()))
