"""The post-incident flow after a real drill: content checked against the incident and Prefect."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

from flows.postmortem import post_incident
from oncall.cli import app
from oncall.clients.slack import SlackClient
from oncall.models import IncidentStatus
from oncall.rotation.postmortems import open_action_items
from tests.fakes.slack_server import FakeSlack, Message
from tests.postmortem.conftest import APPROVER, REASON, Drill

GOOD, BAD = "ghcr.io/gremlinsai/backend:1.4.2", "ghcr.io/gremlinsai/backend:1.5.0"
BLUE = "gremlinsai-backend-blue"


def _second(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.1f} s"


def _thread(fake_slack: FakeSlack, incident_id: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Slack configured, with the incident's thread as the notifier would post it."""
    monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("ONCALL_SLACK_API_URL", fake_slack.url)
    monkeypatch.setenv("ONCALL_SLACK_CHANNEL", "C0INCIDENT1")
    slack = SlackClient(fake_slack.token, base_url=fake_slack.url)
    root = slack.post_message(
        "C0INCIDENT1",
        f"{incident_id} firing",
        metadata={"event_type": "oncall_incident", "event_payload": {"key": incident_id}},
    )
    reply = Message("C0INCIDENT1", f"{float(root.ts) + 0.5:.6f}", "looking at the 1.5.0 release")
    reply.thread_ts, reply.user = root.ts, "U0JANEDOE01"
    fake_slack.messages.append(reply)
    return root.ts


def test_postmortem_of_an_approved_rollback_tells_what_happened(
    resolved_drill: Drill,
    prefect_api: str,
    oncall_home: Path,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inc = resolved_drill.incident
    root_ts = _thread(fake_slack, inc.id, monkeypatch)

    state = post_incident(incident_id=inc.id, return_state=True)

    assert state.is_completed(), state.message
    path = Path(state.result())
    assert path == oncall_home / "postmortems" / f"{inc.id}.md"
    text = path.read_text()
    # Within 60 s of resolution (in-process; the worker path is tested below).
    resolved = inc.at(IncidentStatus.RESOLVED)
    assert resolved is not None
    assert path.stat().st_mtime - resolved.timestamp() < 60

    # Revision and image: the bad release and what the rollback brought back.
    assert f"`{BLUE}` revision 3 (`{BAD}`)" in text
    assert f"now at revision 4 running `{GOOD}`, complete" in text
    assert f"rollback `gremlinsai/deployment/{BLUE}`: revision 3 -> 2" in text
    # The approver and the reason, with the time of the approval.
    (approval,) = inc.approvals
    # Who decided through which channel: the helper resumes as the Prefect UI form does.
    by = f"{APPROVER} via Prefect UI (unverified)"
    assert f'approved by {by} at {_second(approval.at)}: "{REASON}"' in text
    # Durations equal the transitions, from the alert's start.
    start = inc.alert.starts_at
    for label, status in [
        ("Time to mitigate", IncidentStatus.MITIGATED),
        ("Time to resolve", IncidentStatus.RESOLVED),
    ]:
        at = inc.at(status)
        assert at is not None
        assert f"- {label}: {_seconds(at - start)} (" in text
    # The response is the approver's: they took the incident with their decision.
    assert inc.acknowledged_by == APPROVER and inc.acknowledged_at is not None
    took = _seconds(inc.acknowledged_at - start)
    assert f"- Time to acknowledge: {took} ({APPROVER} took it at " in text
    playbook_ack = inc.at(IncidentStatus.ACKNOWLEDGED)
    assert playbook_ack is not None
    assert f"the playbook acknowledged the alert: {_seconds(playbook_ack - start)}" in text
    # P1: 15 minutes to acknowledge, 4 hours to resolve: both met.
    assert "Acknowledge within 15 minutes: **met**" in text
    assert "Resolve within 4 hours: **met**" in text
    # The timeline agrees with Prefect's state history of the playbook run, to the second.
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(inc.flow_run_id or ""))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"postmortem-{inc.id}"]))
        )
    timeline = text.split("## Timeline")[1].split("## Root Cause Analysis")[0]
    names = [s.name for s in sorted(states, key=lambda s: s.timestamp)]
    assert names == ["Pending", "Running", "Paused", "Running", "Resolved"]
    for s in states:
        line = f"- {_second(s.timestamp)}: Playbook run state "
        assert line in timeline, (line, s.name)
    assert "Playbook run state Resumed (Running)" in timeline
    for t in inc.transitions:
        assert f"- {_second(t.at)}: " in timeline
    stamps = re.findall(r"^- (\S+ \S+) UTC:", timeline, flags=re.M)
    assert stamps == sorted(stamps) and len(stamps) >= 12
    # Root cause quoted from the bad release's own logs, preserved before the rollback.
    assert "ERROR lines in the logs of the suspect release's pods" in text
    assert re.search(r"gremlinsai-backend-blue-\w+-\w+: \S+ ERROR \w+ /api/\S+ status=5\d\d", text)
    # Things only people know are placeholders, never invented.
    assert "Customer impact: _To be written by the incident owner._" in text
    assert "- What went well: _To be written in the post-incident review._" in text
    # Owners suggested from the rotation; open items readable by the rotation report.
    assert "kubernetes-infrastructure expert" in text
    (items,) = open_action_items(oncall_home / "postmortems")
    assert items.title.startswith("Incident Post-Mortem: ") and inc.id in items.title
    assert any(BAD in item and "_YYYY-MM-DD_" in item for item in items.open_items)

    # The evidence bundle.
    bundle = oncall_home / "postmortems" / inc.id
    logs = list((bundle / "logs").glob("pre-mitigation-gremlinsai-backend-blue-*.log"))
    assert logs and any(" ERROR " in p.read_text() for p in logs)
    events = json.loads((bundle / "events" / f"gremlinsai.{BLUE}.json").read_text())
    assert any(e["reason"] == "ScalingReplicaSet" for e in events)
    history = json.loads((bundle / "rollout-history" / f"gremlinsai.{BLUE}.json").read_text())
    assert [(r["revision"], r["images"]) for r in history][-2:] == [(3, [BAD]), (4, [GOOD])]
    runs = json.loads((bundle / "run-history.json").read_text())
    assert [s["name"] for s in runs[0]["states"]] == names
    run_logs = (bundle / "prefect-logs.txt").read_text()
    assert "3/3 healthy in a row" in run_logs
    # Every measurement the verification logged is a point of the draft's series.
    points = len(re.findall(r"5xx rate [0-9.e-]+ \(threshold 0.05\): \d/3 healthy", run_logs))
    assert points >= 3
    assert f"`5xx rate (verification)` (playbook samples, {points} points)" in text

    # The artifact is on the server, on the post-incident run, with the draft.
    (artifact,) = artifacts
    assert artifact.type == "markdown"
    assert str(artifact.flow_run_id) == str(state.state_details.flow_run_id)
    assert artifact.data == text

    # The thread was read and the link posted into it.
    assert "looking at the 1.5.0 release" in text
    replies = [m for m in fake_slack.messages if m.thread_ts == root_ts]
    assert any(f"artifacts/key/postmortem-{inc.id}" in m.text for m in replies)

    # By hand: `oncall postmortem ID --output FILE`.
    out = oncall_home / "copy" / "pm.md"
    result = CliRunner().invoke(app, ["postmortem", inc.id, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert str(path) in result.output.replace("\n", "")
    again = out.read_text()
    assert f"# Incident Post-Mortem: {start:%Y-%m-%d} - HighApiErrorRate" in again
    assert f"`{BLUE}` revision 3 (`{BAD}`)" in again


def test_cli_refuses_an_unknown_incident(oncall_home: Path, prefect_api: str) -> None:
    result = CliRunner().invoke(app, ["postmortem", "inc-doesnotexist"])
    assert result.exit_code == 1
    assert "no incident" in result.output
