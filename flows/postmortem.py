"""Post-incident: preserve the evidence and draft the postmortem, so people only edit.

Both seeds end with this procedure: preserve logs and metrics, document the timeline,
write the postmortem from the template, assign action items with owners and due dates.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from oncall.clients.prometheus import PrometheusSettings
from oncall.clients.slack import SlackClient, SlackSettings
from oncall.errors import OncallError
from oncall.models import Incident, utcnow
from oncall.postmortem.evidence import Evidence, WorkloadEvidence
from oncall.postmortem.history import RunHistory
from oncall.postmortem.slack_thread import IncidentThread
from oncall.rotation.settings import EXAMPLE_ROTATION
from oncall.settings import OncallSettings
from oncall.wiring import Clients
from tasks.postmortem import (
    draft,
    gather_incident,
    gather_metrics,
    gather_run_history,
    gather_slack_thread,
    gather_workload_evidence,
    publish,
    suggest_action_owners,
)


@flow(name="post-incident", flow_run_name="postmortem {incident_id}", log_prints=True)
def post_incident(incident_id: str) -> str:
    """Gather an incident's evidence, draft its postmortem, publish it; return the file path."""
    settings = OncallSettings()
    clients = Clients(settings)
    slack_settings = SlackSettings()
    thread = IncidentThread(SlackClient.from_settings(slack_settings), slack_settings)

    # Preserve evidence: the record, Prefect's history, the cluster, metrics, the thread.
    incident = gather_incident(clients.store, incident_id)
    runs, run_logs = gather_run_history(RunHistory(), incident)
    workloads, gaps = _workloads(clients, incident, settings.home)
    metrics, metric_gaps = gather_metrics(PrometheusSettings(), incident, run_logs)
    messages, slack_gaps = gather_slack_thread(thread, incident)
    owners = suggest_action_owners(settings.rotation_file or EXAMPLE_ROTATION, incident)

    # Prepare the post-mortem document from the template; people edit it from here.
    evidence = Evidence(
        incident=incident,
        gathered_at=utcnow(),
        runs=runs,
        run_logs=run_logs,
        workloads=workloads,
        metrics=metrics,
        slack_thread=messages,
        owners=owners,
        gaps=gaps + metric_gaps + slack_gaps,
    )
    path = publish(settings.home, evidence, draft(evidence), thread)
    return str(path)


def _workloads(
    clients: Clients, incident: Incident, home: Path
) -> tuple[list[WorkloadEvidence], list[str]]:
    try:
        kube = clients.kube
    except OncallError as exc:
        return [], [f"cluster: {exc}"]
    return gather_workload_evidence(kube, incident, home)
