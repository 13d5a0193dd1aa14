"""Files of a postmortem under ``ONCALL_HOME/postmortems``: the draft and its evidence bundle."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

from pydantic import TypeAdapter

from oncall.postmortem.evidence import Evidence, WorkloadEvidence

_SNAPSHOTS = TypeAdapter(list[WorkloadEvidence])


def postmortems_dir(home: Path) -> Path:
    """Where postmortems live (the rotation report reads open action items there)."""
    return home / "postmortems"


def bundle_dir(home: Path, incident_id: str) -> Path:
    """The evidence bundle of one incident."""
    return postmortems_dir(home) / incident_id


def bundle_files(evidence: Evidence) -> dict[str, str]:
    """Every file of the bundle by relative name: logs, events, history, metrics, evidence."""
    files: dict[str, str] = {}
    for w in evidence.workloads:
        for log in w.logs:
            files[f"logs/{log.file_name}"] = log.text
        files[f"events/{w.namespace}.{w.deployment}.json"] = json.dumps(
            [e.model_dump(mode="json") for e in w.events], indent=2
        )
        files[f"rollout-history/{w.namespace}.{w.deployment}.json"] = json.dumps(
            [r.model_dump(mode="json") for r in w.revisions], indent=2
        )
    files["run-history.json"] = json.dumps(
        [r.model_dump(mode="json") for r in evidence.runs], indent=2
    )
    files["prefect-logs.txt"] = "".join(
        f"{line.at.astimezone(UTC).isoformat()} {line.level} {line.task or 'flow'}: "
        f"{line.message}\n"
        for line in evidence.run_logs
    )
    files["metrics.json"] = json.dumps(
        [m.model_dump(mode="json") for m in evidence.metrics], indent=2
    )
    if evidence.slack_thread is not None:
        files["slack-thread.json"] = json.dumps(
            [m.model_dump(mode="json") for m in evidence.slack_thread], indent=2
        )
    files["incident.json"] = evidence.incident.model_dump_json(indent=2)
    files["evidence.json"] = evidence.model_dump_json(indent=2)
    return files


def write_bundle(home: Path, evidence: Evidence) -> Path:
    """Write the bundle files; return the bundle directory."""
    root = bundle_dir(home, evidence.incident.id)
    for name, content in bundle_files(evidence).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def write_postmortem(home: Path, incident_id: str, markdown: str) -> Path:
    """Write the draft atomically as ``postmortems/<incident_id>.md``."""
    path = postmortems_dir(home) / f"{incident_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".md.partial")
    partial.write_text(markdown, encoding="utf-8")
    partial.replace(path)
    return path


def save_snapshot(home: Path, incident_id: str, workloads: list[WorkloadEvidence]) -> Path:
    """Keep evidence taken before a mitigation (pods it replaces lose their logs)."""
    stamp = min((log.captured_at for w in workloads for log in w.logs), default=None)
    name = stamp.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ") if stamp else "empty"
    path = bundle_dir(home, incident_id) / "snapshots" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_SNAPSHOTS.dump_json(workloads, indent=2))
    return path


def load_snapshots(home: Path, incident_id: str) -> list[WorkloadEvidence]:
    """Every snapshot kept for the incident, oldest first."""
    directory = bundle_dir(home, incident_id) / "snapshots"
    found: list[WorkloadEvidence] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        found += _SNAPSHOTS.validate_json(path.read_bytes())
    return found
