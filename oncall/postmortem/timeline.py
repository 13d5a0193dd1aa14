"""The incident's timeline: Prefect's state history merged with the incident's own record.

Every entry carries the timestamp of the record it comes from, printed to the second, so
the timeline agrees with the flow run's state history in the Prefect UI.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from oncall.models import Action, IncidentStatus
from oncall.observations import Verification
from oncall.postmortem.evidence import Evidence, FlowRunRecord

# Steps of the playbook worth a line of their own (the rest are bookkeeping).
_KEY_STEPS = ("apply_plan", "wait_for_rollout", "verify_")
_TRANSITION_WORDS = {
    IncidentStatus.TRIGGERED: "Incident opened",
    IncidentStatus.ACKNOWLEDGED: "Acknowledged",
    IncidentStatus.MITIGATED: "Mitigation applied",
    IncidentStatus.RESOLVED: "Resolved (verified)",
    IncidentStatus.ESCALATED: "Escalated",
}


class TimelineEntry(BaseModel):
    """One line of the timeline: when, what, and which record says so."""

    at: datetime
    text: str
    source: str


def build_timeline(evidence: Evidence) -> list[TimelineEntry]:
    """Every recorded moment of the incident, oldest first."""
    inc = evidence.incident
    entries = [
        TimelineEntry(
            at=inc.alert.starts_at,
            text=f"Detection: alert {inc.alert.name} firing on {inc.alert.service}"
            + (f" (value {v})" if (v := inc.alert.annotations.get("value")) else ""),
            source="alert",
        )
    ]
    for t in inc.transitions:
        note = f": {t.note}" if t.note else ""
        entries.append(
            TimelineEntry(at=t.at, text=f"{_TRANSITION_WORDS[t.status]}{note}", source="incident")
        )
    for a in inc.approvals:
        reason = f': "{a.reason}"' if a.reason else " (no reason given)"
        entries.append(
            TimelineEntry(
                at=a.at,
                text=f"Approval {a.decision} by {a.attribution}{reason}",
                source="incident",
            )
        )
    entries.extend(_action_entry(a) for a in inc.actions)
    for run in evidence.runs:
        entries.extend(_run_entries(run, playbook=run.id == inc.flow_run_id))
    return sorted(entries, key=lambda e: e.at)


def _action_entry(action: Action) -> TimelineEntry:
    d = action.detail
    if action.kind == "diagnosis":
        change = d.get("change")
        text = "Diagnosis recorded: " + (
            f"suspect rollout {change['deployment']} revision {change['revision']} "
            f"({', '.join(change['images'])})"
            if change
            else "no rollout correlates with the alert"
        )
    elif action.kind == "rollout":
        state = "complete" if d.get("complete") else "NOT complete"
        text = (
            f"Rollout of {action.target}: revision {d.get('revision')} "
            f"({', '.join(d.get('images', []))}), {state}"
        )
    elif action.kind == "page":
        text = f"Escalation: paged {action.target} ({', '.join(d.get('contacts', []))})"
    elif action.kind == "verification":
        described = Verification.model_validate(d).describe()
        text = described[0].upper() + described[1:]
    elif "before" in d and "after" in d:
        what = "Planned (dry run)" if action.dry_run else "Applied"
        kind = action.kind.removesuffix("-planned")
        text = f"{what}: {kind} {action.target}: {_change(d['before'], d['after'])}"
    else:
        text = f"{action.kind} {action.target}"
    return TimelineEntry(at=action.at, text=text, source="incident")


def _change(before: dict[str, object], after: dict[str, object]) -> str:
    return ", ".join(f"{k} {before.get(k, '-')} -> {v}" for k, v in after.items())


def _run_entries(run: FlowRunRecord, playbook: bool) -> list[TimelineEntry]:
    label = "Playbook run" if playbook else f"Run {run.name!r}"
    entries = []
    previous = ""
    for state in run.states:
        name = state.name
        if state.type == "RUNNING" and previous == "PAUSED":
            name = "Resumed (Running)"
        message = f": {state.message}" if state.message else ""
        entries.append(
            TimelineEntry(
                at=state.at, text=f"{label} state {name}{message}", source="prefect state"
            )
        )
        previous = state.type
    if playbook:
        for task in run.tasks:
            if task.started and task.name.startswith(_KEY_STEPS):
                step = task.name.rsplit("-", 1)[0]
                entries.append(
                    TimelineEntry(
                        at=task.started, text=f"Step {step} started", source="prefect task"
                    )
                )
                if task.ended:
                    entries.append(
                        TimelineEntry(
                            at=task.ended,
                            text=f"Step {step} ended {task.state}",
                            source="prefect task",
                        )
                    )
    return entries
