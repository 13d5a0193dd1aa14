"""The group committer: concurrent writers on PostgreSQL, batches that fall back one by one."""

from __future__ import annotations

import uuid
from concurrent.futures import Future

import pytest
from sqlalchemy import Table, func, select

from oncall.intake.accepting import Accepted, Message
from oncall.intake.committer import GroupCommitter
from oncall.intake.inbox import Inbox
from oncall.intake.tables import dispatches, occurrences, tracked_incidents
from oncall.models import Alert, utcnow


def _alert(service: str) -> Alert:
    return Alert(
        name="HighErrorRate",
        labels={"service": service, "severity": "critical"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )


def _count(inbox: Inbox, table: Table) -> int:
    with inbox.tx(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_four_writers_on_postgresql_open_one_incident_per_service(pg_url: str) -> None:
    inbox = Inbox(pg_url)
    committer = GroupCommitter(inbox, lambda alert: "high-error-rate/cronos", writers=4)
    assert committer.writers == 4
    services = [f"svc-{n}" for n in range(10)]
    # Twenty new alerts per service, submitted interleaved: the writers race on every service.
    futures: list[Future[Accepted]] = [
        committer.submit(Message([_alert(service)], "alertmanager"))
        for _ in range(20)
        for service in services
    ]
    results = [f.result(timeout=60) for f in futures]
    committer.close()
    assert sum(r.new for r in results) == len(services)
    assert sum(r.attached for r in results) == 200 - len(services)
    assert _count(inbox, tracked_incidents) == len(services)
    assert _count(inbox, dispatches) == len(services)
    assert _count(inbox, occurrences) == 200
    inbox.close()


def test_sqlite_keeps_one_writer_whatever_is_asked(sqlite_url: str) -> None:
    inbox = Inbox(sqlite_url)
    committer = GroupCommitter(inbox, lambda alert: "x/y", writers=4)
    assert committer.writers == 1
    committer.close()
    inbox.close()


def test_one_bad_message_fails_alone_and_its_batch_neighbours_commit(sqlite_url: str) -> None:
    inbox = Inbox(sqlite_url)
    inbox.ensure_schema()

    def route(alert: Alert) -> str:
        if alert.service == "poison":
            raise RuntimeError("no route for poison")
        return "high-error-rate/cronos"

    committer = GroupCommitter(inbox, route)
    # Hold the writer: the messages queue up behind it, and the later ones share a batch.
    with inbox._write_lock:
        futures = [
            committer.submit(Message([_alert(service)], "alertmanager"))
            for service in ("a", "poison", "b")
        ]
    assert futures[0].result(timeout=30).new == 1
    with pytest.raises(RuntimeError, match="no route for poison"):
        futures[1].result(timeout=30)
    assert futures[2].result(timeout=30).new == 1
    committer.close()
    assert _count(inbox, tracked_incidents) == 2
    inbox.close()
