"""The automation off switch: while a service is paused, playbooks diagnose and page but
change nothing of it.

A pause has an end (it expires by itself), a reason and who set it; ending it early is
recorded too. Pauses live in the incident store, so every worker sees the same ones.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import and_, or_, select, update

from oncall.errors import OncallError
from oncall.models import utcnow
from oncall.store import IncidentStore, automation_pauses

ALL = "*"  # the pause of every service
MAX_PAUSE = timedelta(days=7)  # longer than a week is a decision, not a pause


class AutomationPause(BaseModel):
    """One pause of the automation for a service (``*``: all of them)."""

    id: str
    service: str
    until: datetime
    reason: str
    by: str
    at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None

    @field_validator("until", "at", "ended_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # SQLite hands back naive datetimes; they were written in UTC.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def describe(self) -> str:
        """One line: whose automation, until when, by whom, why."""
        what = "all services" if self.service == ALL else self.service
        return (
            f"automation paused for {what} until {self.until:%Y-%m-%d %H:%M} UTC "
            f"by {self.by}: {self.reason}"
        )


class PauseRequest(BaseModel):
    """What a person asks for: pause ``service`` for ``duration`` (CLI, API, Slack)."""

    service: str = Field(min_length=1, max_length=200)
    duration: timedelta = Field(gt=timedelta(0), le=MAX_PAUSE)
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field(min_length=1, max_length=200)


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``2h``, ``30m``, ``1h30m``, ``1d``, ``90s`` as a timedelta; OncallError otherwise."""
    found = _DURATION.match(text.strip().lower())
    if not text.strip() or found is None or not any(found.groups()):
        raise OncallError(f"not a duration: {text!r} (use e.g. 2h, 30m, 1h30m, 1d)")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class Pauses:
    """The pauses kept in the incident store."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def pause(self, request: PauseRequest) -> AutomationPause:
        """Start a pause; an earlier one of the same service keeps running beside it."""
        now = utcnow()
        pause = AutomationPause(
            id=uuid.uuid4().hex,
            service=request.service,
            until=now + request.duration,
            reason=request.reason,
            by=request.by,
            at=now,
        )
        with self.store._tx() as conn:
            conn.execute(automation_pauses.insert().values(**pause.model_dump()))
        return pause

    def resume(self, service: str, by: str) -> list[AutomationPause]:
        """End every running pause of ``service`` now; returns those ended."""
        ended = self.active_for([service], exact=True)
        if ended:
            now = utcnow()
            with self.store._tx() as conn:
                conn.execute(
                    update(automation_pauses)
                    .where(automation_pauses.c.id.in_([p.id for p in ended]))
                    .values(ended_at=now, ended_by=by)
                )
        return ended

    def active(self) -> list[AutomationPause]:
        """Every pause running now."""
        return self._select(None)

    def active_for(self, services: list[str], exact: bool = False) -> list[AutomationPause]:
        """The running pauses of any of ``services`` (and of all services, unless ``exact``)."""
        names = [s for s in services if s]
        if not exact:
            names.append(ALL)
        return self._select(names)

    def blocking(self, *services: str) -> AutomationPause | None:
        """The pause that stops changes to a service known by any of these names, if any."""
        found = self.active_for(list(services))
        return max(found, key=lambda p: p.until) if found else None

    def _select(self, services: list[str] | None) -> list[AutomationPause]:
        now = utcnow()
        running = and_(automation_pauses.c.ended_at.is_(None), automation_pauses.c.until > now)
        query = select(automation_pauses).where(running)
        if services is not None:
            query = query.where(or_(*(automation_pauses.c.service == s for s in services)))
        with self.store._tx() as conn:
            rows = conn.execute(query.order_by(automation_pauses.c.at)).mappings().all()
        return [AutomationPause.model_validate(dict(r)) for r in rows]


__all__ = ["ALL", "AutomationPause", "PauseRequest", "Pauses", "parse_duration"]
