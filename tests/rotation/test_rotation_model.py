"""Rotation arithmetic: concrete people at concrete instants of the shipped example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oncall.rotation import Rotation
from oncall.rotation.model import Override, Role


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _who(rotation: Rotation, at: str) -> tuple[int, str, str, str]:
    on_call = rotation.on_call(_utc(at))
    return (
        on_call.week_number,
        on_call.primary.name,
        on_call.secondary.name,
        on_call.escalation_manager.name,
    )


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-05T09:00:00-08:00", (1, "Alex Chen", "Sarah Johnson", "Mike Rodriguez")),
        ("2026-01-12T08:59:59-08:00", (1, "Alex Chen", "Sarah Johnson", "Mike Rodriguez")),
        ("2026-01-12T09:00:00-08:00", (2, "Sarah Johnson", "David Kim", "Mike Rodriguez")),
        ("2026-01-19T12:00:00-08:00", (3, "David Kim", "Alex Chen", "Lisa Wang")),
        ("2026-01-29T23:00:00-08:00", (4, "Alex Chen", "Sarah Johnson", "Lisa Wang")),
    ],
)
def test_each_week_of_the_cycle(example: Rotation, at: str, expected: tuple[object, ...]) -> None:
    assert _who(example, at) == expected


def test_week_4_wraps_around_to_week_1(example: Rotation) -> None:
    # Monday 2026-02-02 09:00 PST = 17:00 UTC: week 4 (Lisa escalates) becomes week 1 (Mike).
    assert _who(example, "2026-02-02T16:59:59Z") == (4, "Alex Chen", "Sarah Johnson", "Lisa Wang")
    assert _who(example, "2026-02-02T17:00:00Z") == (
        1,
        "Alex Chen",
        "Sarah Johnson",
        "Mike Rodriguez",
    )
    # ... and again a whole cycle later.
    assert _who(example, "2026-03-02T17:00:00Z")[0] == 1


def test_spring_forward_handoff_follows_local_time(example: Rotation) -> None:
    # DST began Sunday 2026-03-08; Monday's 09:00 hand-off is 16:00 UTC (PDT), not 17:00.
    assert _who(example, "2026-03-09T15:59:59Z") == (
        1,
        "Alex Chen",
        "Sarah Johnson",
        "Mike Rodriguez",
    )
    assert _who(example, "2026-03-09T16:30:00Z") == (
        2,
        "Sarah Johnson",
        "David Kim",
        "Mike Rodriguez",
    )
    week = example.on_call(_utc("2026-03-09T16:30:00Z"))
    assert week.week_start == _utc("2026-03-09T16:00:00Z")
    # The week before was an hour short: 167 hours.
    before = example.on_call(_utc("2026-03-09T15:00:00Z"))
    assert _utc(before.week_end.isoformat()) - _utc(before.week_start.isoformat()) == timedelta(
        hours=167
    )


def test_fall_back_handoff_follows_local_time(example: Rotation) -> None:
    # DST ended Sunday 2026-11-01; Monday's 09:00 hand-off is 17:00 UTC (PST), not 16:00.
    assert _who(example, "2026-11-02T16:30:00Z") == (3, "David Kim", "Alex Chen", "Lisa Wang")
    assert _who(example, "2026-11-02T17:00:00Z") == (
        4,
        "Alex Chen",
        "Sarah Johnson",
        "Lisa Wang",
    )
    before = example.on_call(_utc("2026-11-02T16:30:00Z"))
    assert _utc(before.week_end.isoformat()) - _utc(before.week_start.isoformat()) == timedelta(
        hours=169
    )
    # Sunday 01:30 happens twice that night; both are still week 3.
    assert _who(example, "2026-11-01T08:30:00Z")[0] == 3
    assert _who(example, "2026-11-01T09:30:00Z")[0] == 3


def test_an_override_replaces_one_role_for_its_range(example: Rotation) -> None:
    data = example.model_dump()
    data["overrides"] = [
        {
            "role": "primary",
            "person": "david.kim",
            "start": datetime(2026, 2, 10, 18, 0),  # naive: hand-off local (PST)
            "end": datetime(2026, 2, 12, 9, 0),
            "reason": "Alex at a conference",
        }
    ]
    rotation = Rotation.model_validate(data)
    # Week 2 of the second cycle: Sarah primary, David secondary.
    assert _who(rotation, "2026-02-11T01:59:59Z")[1] == "Sarah Johnson"
    during = rotation.on_call(_utc("2026-02-11T02:00:00Z"))  # 18:00 PST
    assert (during.primary.name, during.secondary.name) == ("David Kim", "David Kim")
    assert during.overridden[Role.PRIMARY].reason == "Alex at a conference"
    assert _who(rotation, "2026-02-12T17:00:00Z")[1] == "Sarah Johnson"  # 09:00 PST: over


def test_override_must_name_a_known_person_and_end_after_start(example: Rotation) -> None:
    start = datetime(2026, 2, 10, 18, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown person 'nobody'"):
        Rotation.model_validate(
            {
                **example.model_dump(),
                "overrides": [
                    Override(
                        role=Role.PRIMARY,
                        person="nobody",
                        start=start,
                        end=start + timedelta(hours=1),
                    ).model_dump()
                ],
            }
        )


def test_before_the_cycle_starts_the_cycle_runs_backwards(example: Rotation) -> None:
    assert _who(example, "2026-01-05T16:59:59Z") == (4, "Alex Chen", "Sarah Johnson", "Lisa Wang")


def test_naive_instants_are_refused(example: Rotation) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        example.on_call(datetime(2026, 1, 5, 9, 0))


def test_escalation_ladder_names_people_at_each_rung(example: Rotation) -> None:
    ladder = example.escalation_ladder(_utc("2026-01-12T10:00:00-08:00"))  # week 2
    assert [(r.after, r.label, [p.name for p in r.people]) for r in ladder] == [
        (timedelta(0), "Primary", ["Sarah Johnson"]),
        (timedelta(minutes=15), "Secondary", ["David Kim"]),
        (timedelta(minutes=30), "Escalation Manager", ["Mike Rodriguez"]),
        (timedelta(hours=1), "VP Engineering", ["Lisa Wang"]),
    ]


def test_experts_and_cron(example: Rotation) -> None:
    assert [p.name for p in example.experts("llm-ai")] == ["Sarah Johnson", "Dr. Emily Zhang"]
    assert example.cron() == "0 9 * * 1"  # Monday 09:00 America/Los_Angeles
    assert example.cron(days_before=1) == "0 9 * * 0"  # the reminder, Sunday


def test_contacts_by_role_escalation_contact_or_area(example: Rotation) -> None:
    at = _utc("2026-01-19T12:00:00-08:00")  # week 3
    assert [p.name for p in example.contacts("primary", at)] == ["David Kim"]
    assert [p.name for p in example.contacts("escalation_manager", at)] == ["Lisa Wang"]
    assert [p.name for p in example.contacts("engineering_manager", at)] == ["Mike Rodriguez"]
    assert [p.name for p in example.contacts("database", at)] == ["David Kim", "Alex Chen"]
    assert example.contacts("nobody", at) == []
