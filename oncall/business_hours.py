"""Business hours in a time zone: when a P3 incident's escalation may wake someone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessHours:
    """Monday to Friday, ``start`` to ``end`` local time in ``timezone`` (IANA name)."""

    timezone: str
    start: time = time(9, 0)
    end: time = time(17, 0)

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (aware) falls within business hours."""
        local = at.astimezone(ZoneInfo(self.timezone))
        return local.weekday() < 5 and self.start <= local.time() < self.end

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself within business hours, else the next opening (aware, same zone as
        ``at``)."""
        if self.is_open(at):
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        day = local.date()
        if local.time() >= self.start:  # today's opening has passed
            day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=zone).astimezone(at.tzinfo)
