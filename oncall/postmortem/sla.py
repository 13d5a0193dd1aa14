"""Time to acknowledge, mitigate and resolve, and the severity's SLA verdicts (CRONOS table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from oncall.models import Incident, IncidentStatus

Verdict = Literal["met", "missed", "pending"]


class SlaCheck(BaseModel):
    """One SLA target against what happened."""

    name: str
    target: timedelta
    took: timedelta | None
    verdict: Verdict

    @property
    def line(self) -> str:
        """The check as one Markdown line."""
        took = fmt_duration(self.took) if self.took is not None else "not reached"
        return f"{self.name} within {fmt_target(self.target)}: **{self.verdict}** ({took})"


class ResponseTimes(BaseModel):
    """When the incident started, was acknowledged, mitigated and resolved; and the SLA."""

    started: datetime
    acknowledged: datetime | None
    human: str | None
    human_at: datetime | None
    mitigated: datetime | None
    resolved: datetime | None
    escalated: datetime | None
    response: SlaCheck
    resolution: SlaCheck

    def since_start(self, at: datetime | None) -> timedelta | None:
        """Time from the alert's start to ``at``."""
        return at - self.started if at is not None else None


def response_times(incident: Incident, now: datetime) -> ResponseTimes:
    """Durations from the alert's start (``alert.starts_at``) to each transition, and the SLA."""
    started = incident.alert.starts_at
    acknowledged = incident.at(IncidentStatus.ACKNOWLEDGED)
    resolved = incident.at(IncidentStatus.RESOLVED)
    human = incident.acknowledged_by
    # The response is a person's: when they took the incident (an ack through PagerDuty,
    # Slack, the CLI or the API, or their decision on the approval form), not when the
    # playbook acknowledged the alert for itself.
    decided = next((a for a in incident.approvals if a.decision != "timed_out"), None)
    human_at = incident.acknowledged_at or (decided.at if decided else None)
    if human is None and decided is not None:
        human = decided.approver
    severity = incident.severity
    return ResponseTimes(
        started=started,
        acknowledged=acknowledged,
        human=human,
        human_at=human_at,
        mitigated=incident.at(IncidentStatus.MITIGATED),
        resolved=resolved,
        escalated=incident.at(IncidentStatus.ESCALATED),
        response=_check("Acknowledge", severity.response_target, started, human_at, now),
        resolution=_check("Resolve", severity.resolution_target, started, resolved, now),
    )


def _check(
    name: str, target: timedelta, started: datetime, reached: datetime | None, now: datetime
) -> SlaCheck:
    if reached is not None:
        took = reached - started
        return SlaCheck(
            name=name, target=target, took=took, verdict="met" if took <= target else "missed"
        )
    verdict: Verdict = "missed" if now - started > target else "pending"
    return SlaCheck(name=name, target=target, took=None, verdict=verdict)


def fmt_duration(took: timedelta) -> str:
    """Seconds with one decimal, plus h/min/s when it is a minute or more."""
    total = took.total_seconds()
    text = f"{total:.1f} s"
    if abs(total) >= 60:
        hours, rest = divmod(int(abs(total)), 3600)
        minutes, seconds = divmod(rest, 60)
        text += f" = {hours} h {minutes:02d} min {seconds:02d} s" if hours else ""
        text += f" = {minutes} min {seconds:02d} s" if not hours else ""
    return text


def fmt_target(target: timedelta) -> str:
    """An SLA target as the seed's table writes it (15 minutes, 4 hours)."""
    minutes = int(target.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def clock(at: datetime) -> str:
    """A timestamp to the second, UTC, as the timeline prints it."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
