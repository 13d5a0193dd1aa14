"""The incident store: a small SQL database (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from oncall.errors import NotFoundError, PermanentError, TransientError
from oncall.models import Action, Approval, Incident, IncidentStatus, Transition, utcnow
from oncall.subjects import Subject

metadata = MetaData()

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("occurrence_key", String(200), nullable=False, index=True),
    Column("alert_name", String(200), nullable=False, index=True),
    Column("service", String(200), nullable=False, index=True),
    Column("severity", String(4), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("flow_run_id", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
)

# Every destructive action the playbooks took, per service: the rate budget counts these.
remediation_ledger = Table(
    "remediation_ledger",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("service", String(200), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("incident_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

# People who may approve through the API and `oncall approve`: a token each, kept hashed.
approver_tokens = Table(
    "approver_tokens",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The automation off switch (oncall.pauses): while one runs, nothing of its service changes.
automation_pauses = Table(
    "automation_pauses",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("service", String(200), nullable=False, index=True),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("ended_by", String(200), nullable=True),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its directory created and WAL for concurrent readers."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def transaction(engine: Engine, what: str) -> Iterator[Connection]:
    """One committed transaction; a database that does not answer is a TransientError
    (callers retry), any other database error a PermanentError."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise TransientError(f"{what} unavailable: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise PermanentError(f"{what} error: {exc}") from exc


class IncidentStore:
    """Reads and writes incidents; every change is one committed transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
        except OperationalError as exc:
            # Two processes creating the tables at once: the loser finds them there.
            if "already exists" not in str(exc.orig):
                raise TransientError(f"incident store unavailable: {exc.orig}") from exc

    def _tx(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine, "incident store")

    def create(self, incident: Incident) -> Incident:
        """Insert a new incident, recording its first transition."""
        if not incident.transitions:
            incident.transitions.append(Transition(status=IncidentStatus.TRIGGERED))
        now = utcnow()
        with self._tx() as conn:
            conn.execute(
                incidents.insert().values(
                    id=incident.id,
                    occurrence_key=incident.alert.occurrence_key,
                    alert_name=incident.alert.name,
                    service=incident.alert.service,
                    severity=str(incident.severity),
                    status=str(incident.status),
                    flow_run_id=incident.flow_run_id,
                    created_at=now,
                    updated_at=now,
                    body=incident.model_dump_json(),
                )
            )
        return incident

    def get(self, incident_id: str) -> Incident:
        """The incident with this id; NotFoundError if there is none."""
        with self._tx() as conn:
            row = conn.execute(
                select(incidents.c.body).where(incidents.c.id == incident_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id!r}")
        return Incident.model_validate_json(row.body)

    def list(self, limit: int = 50) -> list[Incident]:
        """The newest incidents first."""
        with self._tx() as conn:
            rows = conn.execute(
                select(incidents.c.body).order_by(incidents.c.created_at.desc()).limit(limit)
            ).all()
        return [Incident.model_validate_json(r.body) for r in rows]

    def _update(self, incident_id: str, change: Callable[[Incident], None]) -> Incident:
        with self._tx() as conn:
            query = select(incidents.c.body).where(incidents.c.id == incident_id)
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotFoundError(f"no incident {incident_id!r}")
            incident = Incident.model_validate_json(row.body)
            change(incident)
            conn.execute(
                incidents.update()
                .where(incidents.c.id == incident_id)
                .values(
                    status=str(incident.status),
                    flow_run_id=incident.flow_run_id,
                    updated_at=utcnow(),
                    body=incident.model_dump_json(),
                )
            )
        return incident

    def transition(
        self, incident_id: str, status: IncidentStatus, note: str = "", at: datetime | None = None
    ) -> Incident:
        """Record a status change with its time."""
        entry = Transition(status=status, note=note, at=at or utcnow())
        return self._update(incident_id, lambda inc: inc.transitions.append(entry))

    def add_action(self, incident_id: str, action: Action) -> Incident:
        """Record something the playbook did."""
        return self._update(incident_id, lambda inc: inc.actions.append(action))

    def add_approval(self, incident_id: str, approval: Approval) -> Incident:
        """Record a human's decision."""
        return self._update(incident_id, lambda inc: inc.approvals.append(approval))

    def acknowledge_by_human(self, incident_id: str, who: str) -> Incident:
        """Record that a person has the incident; the first acknowledgement wins."""

        def _ack(inc: Incident) -> None:
            if inc.acknowledged_by is None:
                inc.acknowledged_by, inc.acknowledged_at = who, utcnow()

        return self._update(incident_id, _ack)

    def clear_acknowledgement(self, incident_id: str) -> Incident:
        """Nobody has the incident any more (it was reopened and pages afresh)."""

        def _clear(inc: Incident) -> None:
            inc.acknowledged_by = inc.acknowledged_at = None

        return self._update(incident_id, _clear)

    def set_subject(self, incident_id: str, subject: Subject) -> Incident:
        """Record what the alert is about, as the playbook resolved it."""

        def _set(inc: Incident) -> None:
            inc.subject = subject

        return self._update(incident_id, _set)

    def attach_flow_run(self, incident_id: str, flow_run_id: str) -> Incident:
        """Link the incident to the Prefect flow run working it."""

        def _set(inc: Incident) -> None:
            inc.flow_run_id = flow_run_id

        return self._update(incident_id, _set)
