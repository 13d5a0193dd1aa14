"""The hand-off report against incidents seeded in a real store (SQLite)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from oncall.models import Action, Alert, Incident, IncidentStatus, Severity, Transition
from oncall.rotation import Rotation
from oncall.rotation.postmortems import open_action_items
from oncall.rotation.render import render_markdown, render_slack
from oncall.rotation.report import HandoffReport, build_report
from oncall.store import IncidentStore

HANDOFF = datetime.fromisoformat("2026-03-09T09:00:00-07:00")  # week 2 begins (PDT)


def _incident(
    store: IncidentStore,
    name: str,
    severity: Severity,
    opened: str,
    ack_after: timedelta | None = None,
    resolve_after: timedelta | None = None,
    escalated: bool = False,
) -> Incident:
    start = datetime.fromisoformat(opened)
    alert = Alert(
        name=name,
        labels={"service": "gremlinsai-backend"},
        starts_at=start,
        fingerprint=hashlib.sha256(name.encode()).hexdigest()[:16],
    )
    transitions = [Transition(status=IncidentStatus.TRIGGERED, at=start)]
    if ack_after is not None:
        transitions.append(Transition(status=IncidentStatus.ACKNOWLEDGED, at=start + ack_after))
    if escalated:
        transitions.append(
            Transition(status=IncidentStatus.ESCALATED, at=start + timedelta(hours=1))
        )
    if resolve_after is not None:
        transitions.append(Transition(status=IncidentStatus.RESOLVED, at=start + resolve_after))
    incident = Incident(
        id=f"inc-{name.lower()}", alert=alert, severity=severity, transitions=transitions
    )
    return store.create(incident)


def seed_week(store: IncidentStore) -> None:
    """The outgoing week (Mon 2 Mar 09:00 PST to Mon 9 Mar 09:00 PDT) and some before it."""
    m = timedelta(minutes=1)
    _incident(store, "MetWithin", Severity.P1, "2026-03-03T10:00:00-08:00", 10 * m, 180 * m)
    _incident(store, "MissedBoth", Severity.P2, "2026-03-05T12:00:00-08:00", 45 * m, 540 * m)
    stuck = _incident(
        store, "StillOpen", Severity.P1, "2026-03-08T20:00:00-07:00", 5 * m, escalated=True
    )
    store.add_action(
        stuck.id,
        Action(
            kind="rollback-planned",
            target="gremlinsai/backend-blue",
            at=datetime.fromisoformat("2026-03-08T20:20:00-07:00"),
        ),
    )
    _incident(store, "LastMonth", Severity.P3, "2026-02-20T10:00:00-08:00", 30 * m, 120 * m)
    _incident(store, "Lingering", Severity.P4, "2026-02-25T10:00:00-08:00")


def _report(example: Rotation, tmp_path: Path) -> HandoffReport:
    store = IncidentStore(f"sqlite:///{tmp_path / 'oncall.db'}")
    seed_week(store)
    pm = tmp_path / "postmortems"
    pm.mkdir()
    (pm / "2026-03-05-api-errors.md").write_text(
        "# Incident Post-Mortem: 2026-03-05 - API errors\n\n## Action Items\n"
        "- [ ] Add a canary stage (Alex, 2026-03-20)\n- [x] Roll back faster\n"
        "- [ ] Alert on 5xx per endpoint (Sarah)\n"
    )
    (pm / "2026-02-01-done.md").write_text("# Done\n\n- [x] Everything\n")
    return build_report(example, HANDOFF, store.list(), [], open_action_items(pm))


def test_report_times_and_sla_misses(example: Rotation, tmp_path: Path) -> None:
    report = _report(example, tmp_path)
    assert (report.outgoing.primary.name, report.incoming.primary.name) == (
        "Alex Chen",
        "Sarah Johnson",
    )
    assert (report.outgoing.secondary.name, report.incoming.secondary.name) == (
        "Sarah Johnson",
        "David Kim",
    )
    week = {line.id: line for line in report.past_week}
    assert list(week) == ["inc-metwithin", "inc-missedboth", "inc-stillopen"]
    met, missed, stuck = week.values()
    assert (met.time_to_acknowledge, met.time_to_resolve) == (
        timedelta(minutes=10),
        timedelta(hours=3),
    )
    assert not met.sla_missed
    assert missed.response_missed and missed.resolution_missed  # 45 min > 30; 9 h > 8
    assert stuck.time_to_resolve is None and stuck.resolution_missed  # 13 h open > 4 h
    assert not stuck.response_missed
    assert [i.id for i in report.open_incidents] == ["inc-lingering", "inc-stillopen"]
    assert [(p.incident_id, p.proposed) for p in report.pending_approvals] == [
        ("inc-stillopen", "rollback gremlinsai/backend-blue")
    ]
    assert [(p.postmortem, p.open_items) for p in report.postmortems] == [
        (
            "2026-03-05-api-errors.md",
            ["Add a canary stage (Alex, 2026-03-20)", "Alert on 5xx per endpoint (Sarah)"],
        )
    ]


def test_report_renders_for_people(example: Rotation, tmp_path: Path) -> None:
    report = _report(example, tmp_path)
    markdown = render_markdown(report)
    assert "# On-call hand-off: week 2 of 4, Mon 2026-03-09 09:00 PDT" in markdown
    assert "| Primary | Alex Chen | **Sarah Johnson** (+1-555-0102) |" in markdown
    assert "## Past week: 3 incidents, 2 SLA misses" in markdown
    assert "| 45m 00s | 9h 00m | missed response and resolution |" in markdown
    assert "  - [ ] Add a canary stage (Alex, 2026-03-20)" in markdown
    text, blocks = render_slack(report)
    assert "Primary <@U07GA0ALEX1> → <@U07GA0SARA2>" in text
    joined = "\n".join(b["text"]["text"] for b in blocks)
    assert "*Primary:* <@U07GA0ALEX1> → <@U07GA0SARA2>" in joined
    assert "*Past week: 3 incidents, 2 SLA misses*" in joined
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
