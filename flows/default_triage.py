"""Default triage for alerts no playbook claims: acknowledge, notify, escalate. Never dropped."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State

from flows.playbook_run import PlaybookRun, playbook_flow
from oncall.models import Alert
from oncall.playbooks import PlaybookConfig

PLAYBOOK = "default-triage"


@playbook_flow(PLAYBOOK)
def default_triage(alert: Alert, config: PlaybookConfig | None = None) -> State[Any]:
    """CRONOS "General Alert Response Flow" for an unknown alert: a human takes it from here."""
    config = config or PlaybookConfig(namespace=alert.labels.get("namespace", "default"))
    run = PlaybookRun(PLAYBOOK, alert, config)
    run.acknowledge()
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return run.escalate(
        f"no playbook for {alert.name}; severity {run.incident.severity}: "
        f"{summary or 'no summary'} ({alert.generator_url or 'no source link'})"
    )
