"""The postmortem draft: Markdown after the seeds' templates, from the evidence alone.

A pure function of `Evidence`. What only a person can write (customer impact, why it
happened, lessons) is an explicit placeholder, never invented.
"""

from __future__ import annotations

from oncall.models import IncidentStatus
from oncall.postmortem.evidence import Evidence
from oncall.postmortem.rca import TO_WRITE, root_cause_line, root_cause_section, suspect_change
from oncall.postmortem.sla import ResponseTimes, clock, fmt_duration, fmt_target, response_times
from oncall.postmortem.timeline import build_timeline

TO_REVIEW = "_To be written in the post-incident review._"
DUE = "_YYYY-MM-DD_"


def draft_postmortem(evidence: Evidence) -> str:
    """The postmortem of ``evidence.incident`` as Markdown."""
    times = response_times(evidence.incident, evidence.gathered_at)
    sections = [
        _header(evidence),
        _summary(evidence, times),
        _timeline(evidence),
        root_cause_section(evidence),
        _resolution(evidence),
        _lessons(),
        _action_items(evidence),
        _sources(evidence),
    ]
    return "\n".join(line for section in sections for line in [*section, ""])


def title(evidence: Evidence) -> str:
    """`Incident Post-Mortem: [Date] - [Brief Description]` (the seed's title line)."""
    inc = evidence.incident
    day = inc.alert.starts_at.strftime("%Y-%m-%d")
    return f"Incident Post-Mortem: {day} - {inc.alert.name} on {inc.service} ({inc.id})"


def _header(evidence: Evidence) -> list[str]:
    return [
        f"# {title(evidence)}",
        "",
        f"> Draft gathered and written by oncall at {clock(evidence.gathered_at)}. Every "
        "statement comes from the evidence listed at the end; _italic placeholders_ are "
        "for people to write.",
    ]


def _summary(evidence: Evidence, t: ResponseTimes) -> list[str]:
    inc = evidence.incident
    sev = inc.severity
    end = t.resolved or t.escalated
    if t.resolved:
        duration = (
            f"{clock(t.started)} - {clock(t.resolved)} ({fmt_duration(t.resolved - t.started)})"
        )
    else:
        duration = f"{clock(t.started)} - not resolved by the playbook (status {inc.status.value})"
    value = inc.alert.annotations.get("value")
    summary = inc.alert.annotations.get("summary", inc.alert.name)
    measured = f"alert `{inc.alert.name}`: {summary}" + (f", value {value}" if value else "")
    out = [
        "## Summary",
        "",
        f"- **Incident**: `{inc.id}` {inc.title}, worked by playbook `{inc.playbook or '-'}`",
        f"- **Duration**: {duration}",
        *([f"- **Subject**: `{inc.subject.describe()}`"] if inc.subject else []),
        f"- **Severity**: {sev} ({sev.label}): acknowledge within "
        f"{fmt_target(sev.response_target)}, resolve within {fmt_target(sev.resolution_target)}",
        f"- **Impact**: measured by the {measured}. Customer impact: {TO_WRITE}",
        f"- **Root Cause**: {root_cause_line(evidence)}",
        f"- **Status**: {inc.status.value}" + (f" at {clock(end)}" if end else ""),
        "",
        "### Response times and SLA",
        "",
        f"Measured from the alert's start (`startsAt` {clock(t.started)}).",
        "",
    ]
    out += _durations(t)
    out += ["", f"- SLA: {t.response.line}", f"- SLA: {t.resolution.line}"]
    return out


def _durations(t: ResponseTimes) -> list[str]:
    def since(label: str, at: object, how: str) -> str:
        took = t.since_start(at) if at is not None else None  # type: ignore[arg-type]
        if took is None:
            return f"- {label}: not reached"
        return f"- {label}: {fmt_duration(took)} ({how} at {clock(at)})"  # type: ignore[arg-type]

    if t.human and t.human_at:
        took = fmt_duration(t.human_at - t.started)
        out = [f"- Time to acknowledge: {took} ({t.human} took it at {clock(t.human_at)})"]
    else:
        out = ["- Time to acknowledge: not reached (no person took the incident)"]
    out.append(
        "  - "
        + since("the playbook acknowledged the alert", t.acknowledged, "ACKNOWLEDGED")[2:]
        + " (automation, not a response)"
    )
    out.append(since("Time to mitigate", t.mitigated, "MITIGATED transition"))
    out.append(since("Time to resolve", t.resolved, "RESOLVED transition"))
    return out


def _timeline(evidence: Evidence) -> list[str]:
    out = ["## Timeline", "", "Times in UTC, to the second; the record each line comes from in []."]
    out.append("")
    out += [f"- {clock(e.at)}: {e.text} [{e.source}]" for e in build_timeline(evidence)]
    return out


def _resolution(evidence: Evidence) -> list[str]:
    inc = evidence.incident
    out = ["## Resolution", "", "Actions taken (from the incident record):", ""]
    applied = [a for a in inc.actions if "before" in a.detail and not a.dry_run]
    for a in applied:
        before, after = a.detail["before"], a.detail["after"]
        change = ", ".join(f"{k} {before.get(k, '-')} -> {v}" for k, v in after.items())
        out.append(f"- {a.kind} `{a.target}`: {change}")
    for approval in inc.approvals:
        reason = f': "{approval.reason}"' if approval.reason else ""
        out.append(
            f"- Approval: {approval.decision} by {approval.attribution} at "
            f"{clock(approval.at)}{reason}"
        )
    for a in inc.actions:
        if a.kind == "rollout":
            d = a.detail
            state = "complete" if d.get("complete") else "NOT complete"
            out.append(
                f"- Rollout: `{a.target}` now at revision {d.get('revision')} running "
                f"`{', '.join(d.get('images', []))}`, {state}"
            )
        if a.kind == "page":
            out.append(f"- Paged {a.target}: {', '.join(a.detail.get('contacts', []))}")
    if not applied:
        out.append("- No mitigation was applied by the playbook.")
    last = inc.transitions[-1] if inc.transitions else None
    if last and last.status is IncidentStatus.RESOLVED:
        out.append(f"- Verification: {last.note}")
    elif last:
        out.append(f"- Not resolved by the playbook: {last.status.value}: {last.note}")
    out += ["", f"Why it worked: {TO_WRITE}"]
    return out


def _lessons() -> list[str]:
    return [
        "## Lessons Learned",
        "",
        f"- What went well: {TO_REVIEW}",
        f"- What could be improved: {TO_REVIEW}",
    ]


def _action_items(evidence: Evidence) -> list[str]:
    inc = evidence.incident
    owners = evidence.owners
    lead = f"_suggested: {owners[0].name}_" if owners else "_owner to be named_"
    sme = next((o for o in owners if "expert" in o.why), owners[0] if owners else None)
    sme_text = f"_suggested: {sme.name}_" if sme else "_owner to be named_"
    out = ["## Action Items", ""]
    if owners:
        out.append("Suggested owners (from the rotation; to be confirmed in the review):")
        out += [f"- {o.name}{f' ({o.handle})' if o.handle else ''}: {o.why}" for o in owners]
        out.append("")
    change = suspect_change(evidence)
    rolled_back = any(a.kind == "rollback" and not a.dry_run for a in inc.actions)
    if change and rolled_back:
        out.append(
            f"- [ ] Find why `{', '.join(change['images'])}` failed in `{change['deployment']}` "
            f"before releasing it again (owner: {sme_text}, due: {DUE})"
        )
    for p in _down_probes(evidence):
        out.append(
            f"- [ ] Find why {p} was down during the incident (owner: {sme_text}, due: {DUE})"
        )
    if inc.status is IncidentStatus.ESCALATED:
        reason = inc.transitions[-1].note
        out.append(
            f'- [ ] Review the escalation ("{reason}") and the playbook\'s handling '
            f"(owner: {lead}, due: {DUE})"
        )
    out.append(
        f"- [ ] Update the runbook with this incident's findings (owner: {lead}, due: {DUE})"
    )
    out.append(f"- Further items: {TO_REVIEW}")
    return out


def _down_probes(evidence: Evidence) -> list[str]:
    diagnosis = next((a for a in evidence.incident.actions if a.kind == "diagnosis"), None)
    probes = diagnosis.detail.get("probes", []) if diagnosis else []
    # The service's own health endpoint being down is the symptom, not a dependency.
    return [p["name"] for p in probes if not p["ok"] and p["name"] != "api"]


def _sources(evidence: Evidence) -> list[str]:
    out = ["## Evidence", ""]
    for run in evidence.runs:
        final = run.states[-1].name if run.states else "?"
        out.append(f"- Prefect flow run `{run.name}` ({final}): {run.url or run.id}")
    logs = sum(len(w.logs) for w in evidence.workloads)
    events = sum(len(w.events) for w in evidence.workloads)
    out.append(
        f"- Bundle `postmortems/{evidence.incident.id}/`: {logs} container logs, {events} "
        f"events, rollout history, run history, {len(evidence.run_logs)} Prefect log lines"
    )
    if evidence.slack_thread is not None:
        out.append(f"- Slack thread: {len(evidence.slack_thread)} messages")
    out += [f"- Not gathered: {gap}" for gap in evidence.gaps]
    return out
