"""The evidence of one incident, as gathered after it ended: the only input of the draft."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from oncall.models import Incident
from oncall.observations import Revision


class RunState(BaseModel):
    """One state of a flow run, with Prefect's own timestamp."""

    type: str
    name: str
    at: datetime
    message: str = ""


class TaskRunRecord(BaseModel):
    """One task run of a flow run: what step ran, when, and how it ended."""

    name: str
    state: str
    started: datetime | None = None
    ended: datetime | None = None


class FlowRunRecord(BaseModel):
    """A flow run that worked the incident (the playbook, an escalation timer)."""

    id: str
    name: str
    url: str = ""
    states: list[RunState] = Field(default_factory=list)
    tasks: list[TaskRunRecord] = Field(default_factory=list)


class LogLine(BaseModel):
    """One line of a flow run's Prefect log."""

    at: datetime
    level: str
    message: str
    task: str = ""


class ContainerLog(BaseModel):
    """The log of one container of one pod (current or previous instance)."""

    pod: str
    container: str
    images: list[str] = Field(default_factory=list)
    restarts: int = 0
    previous: bool = False
    captured_at: datetime
    captured: Literal["before mitigation", "after resolution"] = "after resolution"
    text: str = ""

    @property
    def file_name(self) -> str:
        """The bundle file this log is written to."""
        suffix = ".previous" if self.previous else ""
        stage = "pre-mitigation-" if self.captured == "before mitigation" else ""
        return f"{stage}{self.pod}.{self.container}{suffix}.log"

    def lines_with(self, word: str) -> list[str]:
        """Log lines containing ``word`` (e.g. ``ERROR``)."""
        return [line for line in self.text.splitlines() if f" {word} " in f" {line} "]


class EventRecord(BaseModel):
    """One Kubernetes event about an affected object."""

    at: datetime | None
    type: str
    reason: str
    object: str
    message: str
    count: int = 1


class WorkloadEvidence(BaseModel):
    """What the cluster shows about one deployment the incident touched."""

    namespace: str
    deployment: str
    revisions: list[Revision] = Field(default_factory=list)
    logs: list[ContainerLog] = Field(default_factory=list)
    events: list[EventRecord] = Field(default_factory=list)


class MetricPoint(BaseModel):
    """One sample of a metric."""

    at: datetime
    value: float


class MetricSeries(BaseModel):
    """A metric over the incident window: Prometheus' range query or the playbook's samples."""

    source: Literal["prometheus", "playbook"]
    query: str
    labels: dict[str, str] = Field(default_factory=dict)
    points: list[MetricPoint] = Field(default_factory=list)


class SlackMessage(BaseModel):
    """One message of the incident's Slack thread."""

    ts: str
    user: str
    text: str


class OwnerSuggestion(BaseModel):
    """Someone the rotation suggests as an action-item owner, and why."""

    name: str
    handle: str = ""
    why: str


class Evidence(BaseModel):
    """Everything the postmortem is drafted from; nothing else goes into the draft."""

    incident: Incident
    gathered_at: datetime
    runs: list[FlowRunRecord] = Field(
        default_factory=list, description="The playbook's run first, then escalation runs."
    )
    run_logs: list[LogLine] = Field(default_factory=list)
    workloads: list[WorkloadEvidence] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    slack_thread: list[SlackMessage] | None = Field(
        default=None, description="None when Slack is not configured or no thread was found."
    )
    owners: list[OwnerSuggestion] = Field(default_factory=list)
    gaps: list[str] = Field(
        default_factory=list, description="Evidence that could not be gathered, and why."
    )

    @property
    def playbook_run(self) -> FlowRunRecord | None:
        """The flow run of the playbook that worked the incident, if Prefect has it."""
        run_id = self.incident.flow_run_id
        return next((r for r in self.runs if r.id == run_id), None)
