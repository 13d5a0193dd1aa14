"""The root-cause section: what the evidence shows, quoted; the why is left to people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oncall.postmortem.evidence import ContainerLog, Evidence
from oncall.postmortem.sla import clock

TO_WRITE = "_To be written by the incident owner._"
# Enough lines to show the pattern without burying the document.
_MAX_QUOTED = 8


def suspect_change(evidence: Evidence) -> dict[str, Any] | None:
    """The rollout the playbook's diagnosis blamed, if it blamed one."""
    diagnosis = next((a for a in evidence.incident.actions if a.kind == "diagnosis"), None)
    change: dict[str, Any] | None = diagnosis.detail.get("change") if diagnosis else None
    return change


def root_cause_line(evidence: Evidence) -> str:
    """The one-line root cause of the summary: the evidence's suspect, or a placeholder."""
    change = suspect_change(evidence)
    if change is None:
        return f"No rollout correlates with the alert in the evidence. {TO_WRITE}"
    return (
        f"Correlated with the rollout of deployment `{change['deployment']}` revision "
        f"{change['revision']} (`{', '.join(change['images'])}`), "
        f"{change['minutes_before_alert']} min before the alert. "
        f"Confirmation and technical cause: {TO_WRITE}"
    )


def root_cause_section(evidence: Evidence) -> list[str]:
    """`## Root Cause Analysis`: suspect change, rollout history, probes, logs, events, metrics."""
    out = ["## Root Cause Analysis", "", "### What the evidence shows", ""]
    change = suspect_change(evidence)
    if change:
        previous = ", ".join(change.get("previous_images") or []) or "-"
        out.append(
            f"- **Suspect change** (playbook diagnosis): `{change['deployment']}` revision "
            f"{change['revision']} (`{', '.join(change['images'])}`) rolled out at "
            f"{clock_of(change['rolled_out_at'])}, replacing revision "
            f"{change['previous_revision']} (`{previous}`)."
        )
    out.extend(_probes(evidence))
    for w in evidence.workloads:
        if w.revisions:
            out += ["", f"Rollout history of `{w.namespace}/{w.deployment}`:", ""]
            out += ["| revision | images | created | ReplicaSet |", "|---|---|---|---|"]
            out += [
                f"| {r.revision} | `{', '.join(r.images)}` | {clock(r.created_at)} "
                f"| `{r.replicaset}` |"
                for r in w.revisions
            ]
    out += _log_quotes(evidence, change)
    out += _event_quotes(evidence)
    out += _metric_lines(evidence)
    if evidence.slack_thread:
        out += ["", "Slack thread of the incident:", ""]
        out += [f"> {m.user}: {m.text}" for m in evidence.slack_thread[:_MAX_QUOTED]]
    out += ["", "### Why it happened", "", TO_WRITE, "", "### Contributing factors", "", TO_WRITE]
    return out


def clock_of(value: Any) -> str:
    """`clock` of a datetime that may arrive as an ISO string (incident action details)."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return clock(at)


def _probes(evidence: Evidence) -> list[str]:
    diagnosis = next((a for a in evidence.incident.actions if a.kind == "diagnosis"), None)
    probes = diagnosis.detail.get("probes", []) if diagnosis else []
    if not probes:
        return []
    parts = [f"{p['name']} {'up' if p['ok'] else 'DOWN'} ({p['detail']})" for p in probes]
    return [f"- **Dependencies probed** during the incident: {'; '.join(parts)}."]


def bad_release_logs(evidence: Evidence, change: dict[str, Any] | None) -> list[ContainerLog]:
    """Logs of the suspect release's pods if known, else every log gathered."""
    logs = [log for w in evidence.workloads for log in w.logs]
    if change:
        images = set(change["images"])
        suspect = [log for log in logs if images & set(log.images)]
        return suspect or logs
    return logs


def _log_quotes(evidence: Evidence, change: dict[str, Any] | None) -> list[str]:
    logs = bad_release_logs(evidence, change)
    errors = [(log, line) for log in logs for line in log.lines_with("ERROR")]
    if not errors:
        return ["", "No ERROR lines in the container logs gathered."] if logs else []
    pods = sorted({log.pod for log, _ in errors})
    whose = "the suspect release's pods" if change else "the affected pods"
    out = [
        "",
        f"ERROR lines in the logs of {whose} ({len(errors)} lines in {len(pods)} pods: "
        f"{', '.join(pods)}); the first {min(len(errors), _MAX_QUOTED)}:",
        "",
        "```",
    ]
    out += [f"{log.pod}: {line}" for log, line in errors[:_MAX_QUOTED]]
    return [*out, "```"]


def _event_quotes(evidence: Evidence) -> list[str]:
    events = [e for w in evidence.workloads for e in w.events]
    if not events:
        return []
    warnings = [e for e in events if e.type == "Warning"]
    shown = (warnings or events)[:_MAX_QUOTED]
    kind = "Warning events" if warnings else "Events"
    out = ["", f"{kind} of the affected workloads ({len(events)} events in the bundle):", "```"]
    out += [
        f"{clock(e.at) if e.at else '?'} {e.type} {e.reason} {e.object}: {e.message}"
        + (f" (x{e.count})" if e.count > 1 else "")
        for e in shown
    ]
    return [*out, "```"]


def _metric_lines(evidence: Evidence) -> list[str]:
    out = []
    for series in evidence.metrics:
        if not series.points:
            continue
        peak = max(series.points, key=lambda p: p.value)
        last = series.points[-1]
        where = "Prometheus range query" if series.source == "prometheus" else "playbook samples"
        out.append(
            f"- **Metric** `{series.query}` ({where}, {len(series.points)} points): "
            f"peak {peak.value:.4g} at {clock(peak.at)}, last {last.value:.4g} at {clock(last.at)}."
        )
    return ["", *out] if out else []
