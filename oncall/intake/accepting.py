"""Folding one webhook message's alerts into the inbox tables, inside one transaction.

The statements are built once per database dialect with bound parameters, so that
accepting an alert costs the SQL round trips and not the rebuilding of every INSERT and
UPDATE (which was most of the committer's CPU time under load).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from oncall.intake.tables import dispatches, occurrences, seen_events, tracked_incidents
from oncall.models import Alert, Incident, utcnow


@dataclass
class Accepted:
    """What one webhook message did to the inbox."""

    new: int = 0
    deduplicated: int = 0
    attached: int = 0
    resolved: int = 0
    duplicate_event: bool = False
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


def insert_ignoring_duplicates(table: Table, conflict: str, is_postgres: bool) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key, values bound at execution."""
    dialect: Any = postgresql if is_postgres else sqlite
    # RETURNING tells whether a row went in; rowcount does not, reliably, on psycopg.
    stmt: Insert = (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=[conflict])
        .returning(table.c[conflict])
    )
    return stmt


class Acceptor:
    """The acceptance statements of one dialect, and the rules that use them."""

    def __init__(self, is_postgres: bool) -> None:
        self.is_postgres = is_postgres
        occ, inc = occurrences.c, tracked_incidents.c
        self.insert_seen = insert_ignoring_duplicates(seen_events, "event_id", is_postgres)
        self.insert_occurrence = insert_ignoring_duplicates(
            occurrences, "occurrence_key", is_postgres
        )
        # Two new alerts of one service must not both find "no open incident".
        self.lock_service = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("svc"))))
        self.open_incident = (
            select(inc.incident_id)
            .where(inc.service == bindparam("svc"))
            .where(inc.closed_at.is_(None))
            .order_by(inc.opened_at.desc())
            .limit(1)
        )
        self.insert_incident = tracked_incidents.insert()
        self.insert_dispatch = dispatches.insert()
        self.occurrence = select(occ.incident_id, occ.resolved_at).where(
            occ.occurrence_key == bindparam("okey")
        )
        self.link = (
            update(occurrences)
            .where(occ.occurrence_key == bindparam("okey"))
            .values(incident_id=bindparam("iid"), role=bindparam("orole"))
        )
        self.touch_incident = (
            update(tracked_incidents)
            .where(inc.incident_id == bindparam("iid"))
            .values(last_seen_at=bindparam("now"))
        )
        self.refire_incident = (
            update(tracked_incidents)
            .where(inc.incident_id == bindparam("iid"))
            .values(last_seen_at=bindparam("now"), alert_resolved_at=None)
        )
        self.seen_again = (
            update(occurrences)
            .where(occ.occurrence_key == bindparam("okey"))
            .values(last_seen_at=bindparam("now"), times_seen=occ.times_seen + 1)
        )
        self.resolved_again = (
            update(occurrences)
            .where(occ.occurrence_key == bindparam("okey"))
            .values(
                last_seen_at=bindparam("now"),
                times_seen=occ.times_seen + 1,
                status="resolved",
                resolved_at=bindparam("ended"),
            )
        )
        self.firing_count = (
            select(func.count())
            .select_from(occurrences)
            .where(occ.incident_id == bindparam("iid"))
            .where(occ.status == "firing")
        )
        self.alert_resolved = (
            update(tracked_incidents)
            .where(inc.incident_id == bindparam("iid"))
            .where(inc.alert_resolved_at.is_(None))
            .values(alert_resolved_at=bindparam("now"))
        )

    def accept(self, conn: Connection, message: Message, route: Callable[[Alert], str]) -> Accepted:
        """Fold one message into the inbox on ``conn`` (the caller commits)."""
        result = Accepted()
        if message.event_id is not None:
            row = {"event_id": message.event_id, "source": message.source, "received_at": utcnow()}
            if conn.execute(self.insert_seen, row).first() is None:
                result.duplicate_event = True
                return result
        for alert in message.alerts:
            self._accept_one(conn, alert, message.source, route, result)
        return result

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
        row = {
            "occurrence_key": key,
            "role": "unlinked",
            "source": source,
            "alert_name": alert.name,
            "service": alert.service,
            "status": alert.status,
            "alert": alert.model_dump_json(),
            "received_at": now,
            "last_seen_at": now,
            "times_seen": 1,
            "resolved_at": resolved_at,
        }
        if conn.execute(self.insert_occurrence, row).first() is None:
            self._seen_again(conn, alert, now, result)
            return
        if self.is_postgres:
            conn.execute(self.lock_service, {"svc": alert.service})
        open_id = conn.execute(self.open_incident, {"svc": alert.service}).scalar()
        if alert.status == "resolved":
            # Resolved before we ever saw it firing: keep it, start nothing.
            result.resolved += 1
            if open_id is not None:
                self._link(conn, key, open_id, "attached", now)
                self._maybe_alert_resolved(conn, open_id, now)
                result.incidents.append(open_id)
            return
        if open_id is not None:
            conn.execute(self.link, {"okey": key, "iid": open_id, "orole": "attached"})
            conn.execute(self.refire_incident, {"iid": open_id, "now": now})
            result.attached += 1
            result.incidents.append(open_id)
            return
        incident_id, deployment = Incident.id_for(alert), route(alert)
        conn.execute(
            self.insert_incident,
            {
                "incident_id": incident_id,
                "service": alert.service,
                "deployment": deployment,
                "opened_at": now,
                "last_seen_at": now,
            },
        )
        conn.execute(
            self.insert_dispatch,
            {
                "key": key,
                "kind": "playbook",
                "incident_id": incident_id,
                "deployment": deployment,
                "parameters": json.dumps({"alert": alert.model_dump(mode="json")}),
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            },
        )
        conn.execute(self.link, {"okey": key, "iid": incident_id, "orole": "opened"})
        result.new += 1
        result.incidents.append(incident_id)

    def _seen_again(self, conn: Connection, alert: Alert, now: datetime, result: Accepted) -> None:
        key = alert.occurrence_key
        row = conn.execute(self.occurrence, {"okey": key}).one()
        newly_resolved = alert.status == "resolved" and row.resolved_at is None
        if newly_resolved:
            ended = alert.ends_at or now
            conn.execute(self.resolved_again, {"okey": key, "now": now, "ended": ended})
            result.resolved += 1
        else:
            conn.execute(self.seen_again, {"okey": key, "now": now})
            result.deduplicated += 1
        if row.incident_id is not None:
            result.incidents.append(row.incident_id)
            conn.execute(self.touch_incident, {"iid": row.incident_id, "now": now})
            if newly_resolved:
                self._maybe_alert_resolved(conn, row.incident_id, now)

    def _link(self, conn: Connection, key: str, incident_id: str, role: str, now: datetime) -> None:
        conn.execute(self.link, {"okey": key, "iid": incident_id, "orole": role})
        conn.execute(self.touch_incident, {"iid": incident_id, "now": now})

    def _maybe_alert_resolved(self, conn: Connection, incident_id: str, now: datetime) -> None:
        firing = conn.execute(self.firing_count, {"iid": incident_id}).scalar_one()
        if firing == 0:
            conn.execute(self.alert_resolved, {"iid": incident_id, "now": now})
