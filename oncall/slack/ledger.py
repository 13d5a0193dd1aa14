"""Where each incident's Slack message lives, what it shows, and who claimed each approval.

Two small tables in the incident store's database: one row per incident (channel, ts,
current step, approval state) makes posting idempotent across retries and re-runs; one
row per approval request makes a decision from Slack happen at most once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from oncall.errors import PermanentError, TransientError
from oncall.models import utcnow

slack_metadata = MetaData()

slack_messages = Table(
    "slack_incident_messages",
    slack_metadata,
    Column("incident_id", String(40), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("ts", String(40), nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

slack_claims = Table(
    "slack_approval_claims",
    slack_metadata,
    Column("request", String(80), primary_key=True),  # "<flow run id>#<n>"
    Column("user", String(200), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("outcome", String(20), nullable=False),  # claimed | resumed | not_waiting
    Column("at", DateTime(timezone=True), nullable=False),
)


@dataclass
class MessageState:
    """What the incident message shows besides the incident itself."""

    step: str = ""
    # The open or last approval request: n, flow_run, plan, status, by, at.
    approval: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageRef:
    """An incident's message: where it is and what it shows."""

    channel: str
    ts: str
    state: MessageState


@dataclass(frozen=True)
class Claim:
    """Who took an approval request first."""

    user: str
    decision: str
    outcome: str
    at: datetime


class SlackLedger:
    """Reads and writes the two tables; created on first use."""

    _created: ClassVar[set[str]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        key = str(engine.url)
        with self._lock:
            if key not in self._created:
                self._guard(lambda: slack_metadata.create_all(engine))
                self._created.add(key)

    @staticmethod
    def _guard(thunk: Any) -> Any:
        try:
            return thunk()
        except OperationalError as exc:
            raise TransientError(f"Slack ledger unavailable: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise PermanentError(f"Slack ledger error: {exc}") from exc

    def message(self, incident_id: str) -> MessageRef | None:
        """The incident's message, if posted."""
        query = select(slack_messages).where(slack_messages.c.incident_id == incident_id)

        def read() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(query).first()

        row = self._guard(read)
        if row is None:
            return None
        raw = json.loads(row.state)
        return MessageRef(
            row.channel, row.ts, MessageState(raw.get("step", ""), raw.get("approval", {}))
        )

    def save(self, incident_id: str, channel: str, ts: str, state: MessageState) -> None:
        """Record (or replace) where the message is and what it shows."""
        values = {
            "channel": channel,
            "ts": ts,
            "state": json.dumps({"step": state.step, "approval": state.approval}),
            "updated_at": utcnow(),
        }

        def write() -> None:
            with self.engine.begin() as conn:
                done = conn.execute(
                    slack_messages.update()
                    .where(slack_messages.c.incident_id == incident_id)
                    .values(**values)
                )
                if done.rowcount == 0:
                    conn.execute(slack_messages.insert().values(incident_id=incident_id, **values))

        self._guard(write)

    def claim(self, request: str, user: str, decision: str) -> Claim | None:
        """Take an approval request; None if taken, else the earlier claim."""

        def write() -> Claim | None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        slack_claims.insert().values(
                            request=request,
                            user=user,
                            decision=decision,
                            outcome="claimed",
                            at=utcnow(),
                        )
                    )
                return None
            except IntegrityError:
                return self.claimed(request)

        claim: Claim | None = self._guard(write)
        return claim

    def claimed(self, request: str) -> Claim | None:
        """The claim on a request, if any."""
        query = select(slack_claims).where(slack_claims.c.request == request)

        def read() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(query).first()

        row = self._guard(read)
        return None if row is None else Claim(row.user, row.decision, row.outcome, row.at)

    def settle(self, request: str, outcome: str) -> None:
        """Record how a claimed request ended (resumed, not_waiting)."""

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    slack_claims.update()
                    .where(slack_claims.c.request == request)
                    .values(outcome=outcome)
                )

        self._guard(write)

    def release(self, request: str) -> None:
        """Give a claim back (Prefect could not be reached: a later click may try again)."""

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(slack_claims.delete().where(slack_claims.c.request == request))

        self._guard(write)
