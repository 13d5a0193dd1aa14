"""The weekly hand-off report: who hands over to whom, and what the incoming shift inherits.

CRONOS seed, "On-Call Best Practices": hand off properly at shift end (open incidents,
the week's incidents against the SLAs, open follow-ups) and review recent changes at
shift start (recent rollouts of the watched services).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from oncall.models import Incident, IncidentStatus
from oncall.rotation.model import OnCall, Role, Rotation


class IncidentLine(BaseModel):
    """One incident with its times to acknowledge and resolve, measured against the SLA."""

    id: str
    title: str
    severity: str
    status: IncidentStatus
    opened_at: datetime
    time_to_acknowledge: timedelta | None
    time_to_resolve: timedelta | None
    response_missed: bool
    resolution_missed: bool
    flow_run_id: str | None = None

    @property
    def sla_missed(self) -> bool:
        """Whether either target was missed."""
        return self.response_missed or self.resolution_missed


class PendingApproval(BaseModel):
    """A mitigation a playbook proposed that no human has decided on yet."""

    incident_id: str
    title: str
    proposed: str
    since: datetime
    flow_run_id: str | None = None


class DeploymentChange(BaseModel):
    """A rollout of a watched deployment (or its current revision if none was recent)."""

    namespace: str
    deployment: str
    revision: int
    images: list[str]
    rolled_out_at: datetime
    change_cause: str = ""
    recent: bool = True


class PostmortemActions(BaseModel):
    """A postmortem with its unchecked action items."""

    postmortem: str
    title: str
    open_items: list[str]


class HandoffReport(BaseModel):
    """Everything the hand-off message, the artifact and the user groups are made from."""

    week_start: datetime
    week_end: datetime
    week_number: int
    cycle_length: int
    outgoing: OnCall
    incoming: OnCall
    generated_at: datetime
    open_incidents: list[IncidentLine] = Field(default_factory=list)
    past_week: list[IncidentLine] = Field(default_factory=list)
    postmortems: list[PostmortemActions] = Field(default_factory=list)
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    deployments: list[DeploymentChange] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list, description="Sections that could not be read."
    )

    @property
    def sla_misses(self) -> list[IncidentLine]:
        """The past week's incidents that missed a target."""
        return [line for line in self.past_week if line.sla_missed]

    def changes(self, role: Role) -> tuple[str, str]:
        """Slack user IDs (outgoing, incoming) of a role."""
        return (
            self.outgoing.holder(role).slack_user_id,
            self.incoming.holder(role).slack_user_id,
        )


def incident_line(incident: Incident, now: datetime) -> IncidentLine:
    """Times and SLA verdicts of one incident (unfinished clocks run until ``now``)."""
    opened = incident.at(IncidentStatus.TRIGGERED) or (
        incident.transitions[0].at if incident.transitions else now
    )
    acked = incident.at(IncidentStatus.ACKNOWLEDGED)
    resolved = incident.at(IncidentStatus.RESOLVED)
    severity = incident.severity
    return IncidentLine(
        id=incident.id,
        title=incident.title,
        severity=str(severity),
        status=incident.status,
        opened_at=opened,
        time_to_acknowledge=acked - opened if acked else None,
        time_to_resolve=resolved - opened if resolved else None,
        response_missed=(acked or now) - opened > severity.response_target,
        resolution_missed=(resolved or now) - opened > severity.resolution_target,
        flow_run_id=incident.flow_run_id,
    )


def pending_approval(incident: Incident) -> PendingApproval | None:
    """The proposal of an open incident still waiting for a decision, if there is one."""
    if incident.status == IncidentStatus.RESOLVED:
        return None
    planned = [a for a in incident.actions if a.kind.endswith("-planned") and not a.dry_run]
    if not planned:
        return None
    last = planned[-1]
    if any(decision.at >= last.at for decision in incident.approvals):
        return None
    return PendingApproval(
        incident_id=incident.id,
        title=incident.title,
        proposed=f"{last.kind.removesuffix('-planned')} {last.target}",
        since=last.at,
        flow_run_id=incident.flow_run_id,
    )


def build_report(
    rotation: Rotation,
    at: datetime,
    incidents: list[Incident],
    deployments: list[DeploymentChange],
    postmortems: list[PostmortemActions],
    problems: list[str] | None = None,
    now: datetime | None = None,
) -> HandoffReport:
    """The hand-off of the week that contains ``at``, from the store's incidents."""
    incoming = rotation.on_call(at)
    outgoing = rotation.on_call(incoming.week_start - timedelta(microseconds=1))
    now = now or at
    lines = [(incident, incident_line(incident, now)) for incident in incidents]
    lines.sort(key=lambda pair: pair[1].opened_at)
    return HandoffReport(
        week_start=incoming.week_start,
        week_end=incoming.week_end,
        week_number=incoming.week_number,
        cycle_length=len(rotation.weeks),
        outgoing=outgoing,
        incoming=incoming,
        generated_at=now,
        open_incidents=[line for _, line in lines if line.status != IncidentStatus.RESOLVED],
        past_week=[
            line for _, line in lines if outgoing.week_start <= line.opened_at < incoming.week_start
        ],
        postmortems=[p for p in postmortems if p.open_items],
        pending_approvals=[p for i, _ in lines if (p := pending_approval(i)) is not None],
        deployments=deployments,
        problems=list(problems or []),
    )
