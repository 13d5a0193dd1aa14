"""The hand-off report as Markdown (Prefect artifact) and as a Slack message (Block Kit)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from oncall.rotation.model import OnCall, Role
from oncall.rotation.report import HandoffReport, IncidentLine

# Slack refuses a section text over 3000 characters.
_SECTION_LIMIT = 2900
_ROLES = (Role.PRIMARY, Role.SECONDARY, Role.ESCALATION_MANAGER)


def duration(value: timedelta | None) -> str:
    """A short human duration: ``4m 30s``, ``2h 05m``, ``3d 4h``; ``-`` for none."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def local(at: datetime, report: HandoffReport) -> str:
    """A time in the rotation's zone, e.g. ``Mon 2026-03-09 09:00 PDT``."""
    return at.astimezone(report.week_start.tzinfo).strftime("%a %Y-%m-%d %H:%M %Z")


def _sla(line: IncidentLine) -> str:
    missed = [
        name
        for name, flag in (
            ("response", line.response_missed),
            ("resolution", line.resolution_missed),
        )
        if flag
    ]
    return "missed " + " and ".join(missed) if missed else "met"


def title(report: HandoffReport) -> str:
    """The report's headline."""
    return (
        f"On-call hand-off: week {report.week_number} of {report.cycle_length}, "
        f"{local(report.week_start, report)}"
    )


def render_markdown(report: HandoffReport) -> str:
    """The report as Markdown for the Prefect artifact."""
    out = [f"# {title(report)}", "", "| Role | Outgoing | Incoming |", "|---|---|---|"]
    for role in _ROLES:
        old, new = report.outgoing.holder(role), report.incoming.holder(role)
        note = " (override)" if role in report.incoming.overridden else ""
        out.append(f"| {role.label} | {old.name} | **{new.name}**{note} ({new.phone}) |")
    out += ["", f"Week: {local(report.week_start, report)} to {local(report.week_end, report)}."]
    out += ["", f"## Open incidents ({len(report.open_incidents)})", ""]
    out += [
        f"- `{i.id}` {i.title}, {i.status.value}, "
        f"open for {duration(report.generated_at - i.opened_at)}"
        for i in report.open_incidents
    ] or ["None."]
    misses = len(report.sla_misses)
    out += ["", f"## Past week: {len(report.past_week)} incidents, {misses} SLA misses", ""]
    if report.past_week:
        out += ["| Incident | Severity | Status | To acknowledge | To resolve | SLA |"]
        out += ["|---|---|---|---|---|---|"]
        out += [
            f"| `{i.id}` {i.title} | {i.severity} | {i.status.value} | "
            f"{duration(i.time_to_acknowledge)} | {duration(i.time_to_resolve)} | {_sla(i)} |"
            for i in report.past_week
        ]
    else:
        out.append("No incidents.")
    out += ["", "## Postmortems with open action items", ""]
    for pm in report.postmortems:
        out.append(f"- **{pm.title}** (`{pm.postmortem}`)")
        out += [f"  - [ ] {item}" for item in pm.open_items]
    if not report.postmortems:
        out.append("None.")
    out += ["", "## Approvals still pending", ""]
    out += [
        f"- `{p.incident_id}` {p.title}: {p.proposed} (waiting since {local(p.since, report)})"
        for p in report.pending_approvals
    ] or ["None."]
    out += ["", "## Recent deployments of watched services", ""]
    out += [
        f"- {d.namespace}/{d.deployment} revision {d.revision} ({', '.join(d.images)}) "
        f"{'rolled out' if d.recent else 'current since'} {local(d.rolled_out_at, report)}"
        + (f": {d.change_cause}" if d.change_cause else "")
        for d in report.deployments
    ] or ["None."]
    if report.problems:
        out += ["", "## Not checked", ""] + [f"- {p}" for p in report.problems]
    return "\n".join(out) + "\n"


def _people(on_call: OnCall) -> dict[Role, str]:
    return {role: on_call.holder(role).mention for role in _ROLES}


def _section(heading: str, lines: list[str], empty: str = "None.") -> dict[str, Any]:
    body = f"*{heading}*\n" + ("\n".join(lines) if lines else empty)
    if len(body) > _SECTION_LIMIT:
        body = body[: _SECTION_LIMIT - 20].rsplit("\n", 1)[0] + "\n… (more in the artifact)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": body}}


def render_slack(report: HandoffReport) -> tuple[str, list[dict[str, Any]]]:
    """The report as a Slack message: fallback text and Block Kit blocks."""
    old, new = _people(report.outgoing), _people(report.incoming)
    handover = [f"*{role.label}:* {old[role]} → {new[role]}" for role in _ROLES]
    text = (
        f"{title(report)}. Primary {old[Role.PRIMARY]} → {new[Role.PRIMARY]}, "
        f"secondary {old[Role.SECONDARY]} → {new[Role.SECONDARY]}; "
        f"{len(report.open_incidents)} open incidents."
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(report)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(handover)}},
        _section(
            f"Open incidents ({len(report.open_incidents)})",
            [f"• `{i.id}` {i.title} ({i.status.value})" for i in report.open_incidents],
        ),
        _section(
            f"Past week: {len(report.past_week)} incidents, {len(report.sla_misses)} SLA misses",
            [
                f"• `{i.id}` {i.title}: ack {duration(i.time_to_acknowledge)}, "
                f"resolve {duration(i.time_to_resolve)}, SLA {_sla(i)}"
                for i in report.past_week
            ],
        ),
        _section(
            "Postmortems with open action items",
            [f"• {pm.title}: {len(pm.open_items)} open" for pm in report.postmortems],
        ),
        _section(
            "Approvals still pending",
            [f"• `{p.incident_id}` {p.title}: {p.proposed}" for p in report.pending_approvals],
        ),
        _section(
            "Recent deployments",
            [
                f"• {d.namespace}/{d.deployment} rev {d.revision} ({', '.join(d.images)})"
                f"{'' if d.recent else ' (no change this week)'}"
                for d in report.deployments
            ],
        ),
    ]
    if report.problems:
        blocks.append(_section("Not checked", [f"• {p}" for p in report.problems]))
    return text, blocks


def render_reminder(upcoming: OnCall, cycle_length: int) -> str:
    """The day-before reminder to whoever comes on call."""
    start = upcoming.week_start.strftime("%a %Y-%m-%d %H:%M %Z")
    return (
        f"Reminder: {upcoming.primary.mention} (primary) and {upcoming.secondary.mention} "
        f"(secondary) are on call from {start} (week {upcoming.week_number} of {cycle_length}); "
        f"escalation manager {upcoming.escalation_manager.mention}. "
        "Test access to PagerDuty, Grafana and kubectl before the shift."
    )
