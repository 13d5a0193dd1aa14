"""The durable inbox: each alert occurrence committed once, re-sends folded into last-seen."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Insert, Table, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from oncall.errors import NotFoundError, PermanentError, TransientError
from oncall.intake.accepting import Accepted, Acceptor, Message, insert_ignoring_duplicates
from oncall.intake.tables import (
    dead_letters,
    heartbeat,
    intake_metadata,
)
from oncall.models import Alert, Incident, Severity, utcnow
from oncall.store import IncidentStore, make_engine


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything the intake writes is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        self._acceptor = Acceptor(self.is_postgres)

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
        return insert_ignoring_duplicates(table, conflict, self.is_postgres).values(**values)

    def accept_batch(
        self, messages: list[Message], route: Callable[[Alert], str]
    ) -> list[Accepted]:
        """Commit several messages in one transaction (group commit): all or none."""
        with self.tx() as conn:
            return [self._acceptor.accept(conn, message, route) for message in messages]

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
