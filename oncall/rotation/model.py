"""The rotation file as data: people, the weekly cycle, overrides, the escalation ladder.

Weeks start at the hand-off instant in the rotation's own time zone (GremlinsAI seed:
"Current On-Call Schedule"), so week boundaries follow daylight saving in local time.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class RotationReferenceError(ValueError):
    """A cross-reference in the file is wrong; ``loc`` says where (for line numbers)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as America/Los_Angeles"
        ) from None
    return name


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _no_sexagesimal(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 9:00 as the base-60 integer 540.
    if isinstance(value, int):
        raise ValueError("write the time quoted, e.g. '09:00' (YAML reads 9:00 as a number)")
    return value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
TimeZoneName = Annotated[str, AfterValidator(_zone)]
LocalTime = Annotated[time, BeforeValidator(_no_sexagesimal)]
PersonId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Role(enum.StrEnum):
    """An on-call role of the weekly cycle."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    ESCALATION_MANAGER = "escalation_manager"

    @property
    def label(self) -> str:
        """How the seed's table names the role."""
        return self.value.replace("_", " ").title()


class Weekday(enum.StrEnum):
    """A day of the week, Monday first (as ``date.weekday()`` counts)."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """0 for Monday ... 6 for Sunday (as ``date.weekday()``)."""
        return list(Weekday).index(self)


class Person(BaseModel):
    """Someone who can be paged, with every way to reach them."""

    model_config = _STRICT

    name: str = Field(min_length=1, description="Full name as the team knows it.")
    title: str = Field(default="", description="Role in the organisation.")
    slack_user_id: str = Field(pattern=r"^[UW][A-Z0-9]{6,}$", description="Slack member ID.")
    slack_handle: str = Field(default="", description="Display handle, e.g. @alex.chen.")
    pagerduty_user_id: str | None = Field(
        default=None, pattern=r"^P[A-Z0-9]{6}$", description="PagerDuty user ID."
    )
    email: Annotated[str, AfterValidator(_email)]
    phone: str = Field(pattern=r"^\+[0-9][0-9 ()-]{5,}$", description="Phone, international.")
    timezone: TimeZoneName = Field(description="IANA time zone where the person works.")

    @property
    def mention(self) -> str:
        """The Slack mention that notifies the person."""
        return f"<@{self.slack_user_id}>"

    @property
    def zone_info(self) -> ZoneInfo:
        """The person's time zone."""
        return ZoneInfo(self.timezone)


class Week(BaseModel):
    """One week of the cycle: who holds each role (person ids)."""

    model_config = _STRICT

    primary: PersonId
    secondary: PersonId
    escalation_manager: PersonId

    def holder(self, role: Role) -> str:
        """The person id holding ``role`` this week."""
        held: str = getattr(self, role.value)
        return held


class Handoff(BaseModel):
    """When a week ends and the next begins: a local weekday and time in a time zone."""

    model_config = _STRICT

    weekday: Weekday = Weekday.MONDAY
    time: LocalTime = time(9, 0)
    timezone: TimeZoneName = "America/Los_Angeles"

    @property
    def zone(self) -> ZoneInfo:
        """The hand-off time zone."""
        return ZoneInfo(self.timezone)


class Override(BaseModel):
    """Someone else holds a role from ``start`` to ``end`` (naive times are hand-off local)."""

    model_config = _STRICT

    role: Role
    person: PersonId
    start: datetime
    end: datetime
    reason: str = ""

    def covers(self, at: datetime) -> bool:
        """Whether the override is in force at ``at`` (start inclusive, end exclusive)."""
        # In UTC: aware datetimes sharing a zone compare by wall clock, wrong across DST.
        instant = at.astimezone(UTC)
        return self.start.astimezone(UTC) <= instant < self.end.astimezone(UTC)


class EscalationStep(BaseModel):
    """One rung of the escalation ladder as written in the file."""

    model_config = _STRICT

    after_minutes: int = Field(ge=0, description="Minutes after the page the rung is reached.")
    role: Role | None = Field(default=None, description="The on-call role to escalate to.")
    contact: str | None = Field(default=None, description="A key of escalation_contacts.")
    label: str = Field(default="", description="Name of the rung; default: role or title.")
    why: str = ""

    @model_validator(mode="after")
    def _one_target(self) -> EscalationStep:
        if (self.role is None) == (self.contact is None):
            raise ValueError("give exactly one of role or contact")
        return self


class Rung(BaseModel):
    """A rung of the ladder resolved at one instant: whom to page, and when."""

    after: timedelta
    label: str
    people: list[Person]
    why: str = ""


class OnCall(BaseModel):
    """Who holds each role at one instant, and which week of the cycle it is.

    ``week_start``/``week_end`` are in the rotation's zone for display; subtract them
    after ``astimezone(UTC)`` (Python subtracts same-zone datetimes by wall clock).
    """

    at: datetime
    week_index: int = Field(description="Weeks since the cycle's week 1 began (0-based).")
    week_number: int = Field(description="Week of the cycle, 1-based as in the seed's table.")
    week_start: datetime
    week_end: datetime
    primary: Person
    secondary: Person
    escalation_manager: Person
    overridden: dict[Role, Override] = Field(default_factory=dict)

    def holder(self, role: Role) -> Person:
        """The person holding ``role``."""
        held: Person = getattr(self, role.value)
        return held


_DEFAULT_LADDER = [
    EscalationStep(after_minutes=0, role=Role.PRIMARY, why="responds and acknowledges"),
    EscalationStep(after_minutes=15, role=Role.SECONDARY, why="no progress"),
    EscalationStep(after_minutes=30, role=Role.ESCALATION_MANAGER, why="mitigation unsuccessful"),
    EscalationStep(after_minutes=60, contact="vp_engineering", why="customer impact continues"),
]


class Rotation(BaseModel):
    """The whole rotation file."""

    model_config = _STRICT

    handoff: Handoff = Field(default_factory=Handoff)
    cycle_start: date = Field(description="Local date on which week 1 of the cycle begins.")
    people: dict[PersonId, Person] = Field(min_length=1)
    weeks: list[Week] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)
    usergroups: dict[Role, str] = Field(
        default_factory=dict, description="Slack user group ID (S...) kept in step per role."
    )
    escalation_contacts: dict[str, PersonId] = Field(default_factory=dict)
    escalation: list[EscalationStep] = Field(default_factory=lambda: list(_DEFAULT_LADDER))
    subject_matter_experts: dict[str, list[PersonId]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _localise_overrides(cls, data: Any) -> Any:
        # People write override times as wall-clock times where the hand-off happens.
        if not isinstance(data, dict) or not isinstance(data.get("overrides"), list):
            return data
        handoff = data.get("handoff") or {}
        zone_name = handoff.get("timezone", "America/Los_Angeles")
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            return data  # the handoff.timezone error is reported by its own field
        overrides = []
        for item in data["overrides"]:
            if isinstance(item, dict):
                item = dict(item)
                for key in ("start", "end"):
                    value = item.get(key)
                    if isinstance(value, datetime) and value.tzinfo is None:
                        item[key] = value.replace(tzinfo=zone)
            overrides.append(item)
        return {**data, "overrides": overrides}

    @model_validator(mode="after")
    def _references(self) -> Rotation:
        known = self.people.keys()

        def check(loc: tuple[str | int, ...], person: str) -> None:
            if person not in known:
                raise RotationReferenceError(
                    loc, f"unknown person {person!r}; known: {', '.join(sorted(known))}"
                )

        if self.cycle_start.weekday() != self.handoff.weekday.number:
            raise RotationReferenceError(
                ("cycle_start",),
                f"{self.cycle_start} is a {self.cycle_start.strftime('%A')}, "
                f"but hand-offs are on {self.handoff.weekday.value.title()}",
            )
        for i, week in enumerate(self.weeks):
            for role in Role:
                check(("weeks", i, role.value), week.holder(role))
        for i, override in enumerate(self.overrides):
            check(("overrides", i, "person"), override.person)
            if override.end.astimezone(UTC) <= override.start.astimezone(UTC):
                raise RotationReferenceError(("overrides", i, "end"), "end must be after start")
        for key, person in self.escalation_contacts.items():
            check(("escalation_contacts", key), person)
        for i, step in enumerate(self.escalation):
            if step.contact is not None and step.contact not in self.escalation_contacts:
                raise RotationReferenceError(
                    ("escalation", i, "contact"),
                    f"unknown escalation contact {step.contact!r}",
                )
        for area, experts in self.subject_matter_experts.items():
            for i, person in enumerate(experts):
                check(("subject_matter_experts", area, i), person)
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The rotation's time zone (the hand-off's)."""
        return self.handoff.zone

    def handoff_at(self, week_index: int) -> datetime:
        """The instant week ``week_index`` (0 = the cycle's first week 1) begins."""
        day = self.cycle_start + timedelta(weeks=week_index)
        return datetime.combine(day, self.handoff.time, tzinfo=self.zone)

    def week_index(self, at: datetime) -> int:
        """Weeks since the cycle began at instant ``at`` (negative before it)."""
        _aware(at)
        local_day = at.astimezone(self.zone).date()
        index = (local_day - self.cycle_start).days // 7
        if at.astimezone(UTC) < self.handoff_at(index).astimezone(UTC):
            index -= 1
        return index

    def on_call(self, at: datetime) -> OnCall:
        """Who is primary, secondary and escalation manager at instant ``at``."""
        index = self.week_index(at)
        week = self.weeks[index % len(self.weeks)]
        holders = {role: self.people[week.holder(role)] for role in Role}
        overridden: dict[Role, Override] = {}
        for override in self.overrides:  # the last one written wins
            if override.covers(at):
                holders[override.role] = self.people[override.person]
                overridden[override.role] = override
        return OnCall(
            at=at,
            week_index=index,
            week_number=index % len(self.weeks) + 1,
            week_start=self.handoff_at(index),
            week_end=self.handoff_at(index + 1),
            primary=holders[Role.PRIMARY],
            secondary=holders[Role.SECONDARY],
            escalation_manager=holders[Role.ESCALATION_MANAGER],
            overridden=overridden,
        )

    def escalation_ladder(self, at: datetime) -> list[Rung]:
        """The seed's escalation timeline at ``at``, each rung naming the people to page."""
        on_call = self.on_call(at)
        rungs = []
        for step in self.escalation:
            if step.role is not None:
                person = on_call.holder(step.role)
                label = step.role.label
            else:
                person = self.people[self.escalation_contacts[step.contact or ""]]
                label = person.title or str(step.contact)
            rungs.append(
                Rung(
                    after=timedelta(minutes=step.after_minutes),
                    label=step.label or label,
                    people=[person],
                    why=step.why,
                )
            )
        return rungs

    def contacts(self, name: str, at: datetime) -> list[Person]:
        """Whom a name means at ``at``: a role, an escalation contact, or an SME area."""
        if name in Role.__members__.values():
            return [self.on_call(at).holder(Role(name))]
        if name in self.escalation_contacts:
            return [self.people[self.escalation_contacts[name]]]
        return self.experts(name)

    def experts(self, area: str) -> list[Person]:
        """Subject-matter experts of an area (empty if the area is not listed)."""
        return [self.people[p] for p in self.subject_matter_experts.get(area, [])]

    def cron(self, days_before: int = 0) -> str:
        """Cron line (in the hand-off zone) for the hand-off, or ``days_before`` it."""
        weekday = (self.handoff.weekday.number - days_before) % 7
        cron_day = (weekday + 1) % 7  # cron counts Sunday as 0
        return f"{self.handoff.time.minute} {self.handoff.time.hour} * * {cron_day}"


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; give an offset such as Z")
