"""Post-incident tasks: gather each kind of evidence, draft, publish. Thin over the clients."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncall.clients.kube import KubeClient
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.prometheus import PrometheusClient, PrometheusSettings
from oncall.errors import OncallError
from oncall.models import Incident, utcnow
from oncall.postmortem.bundle import load_snapshots, save_snapshot, write_bundle, write_postmortem
from oncall.postmortem.draft import draft_postmortem
from oncall.postmortem.evidence import (
    Evidence,
    FlowRunRecord,
    LogLine,
    MetricSeries,
    OwnerSuggestion,
    SlackMessage,
    WorkloadEvidence,
)
from oncall.postmortem.history import RunHistory
from oncall.postmortem.owners import suggest_owners
from oncall.postmortem.prometheus import alert_expression, playbook_samples, range_series
from oncall.postmortem.slack_thread import IncidentThread
from oncall.postmortem.trigger import POSTMORTEM_DEPLOYMENT, POSTMORTEM_TAG, schedule_postmortem
from oncall.postmortem.workloads import (
    affected_deployments,
    collect,
    merge,
    snapshot,
    window_start,
)
from oncall.retrying import retry_if_transient
from oncall.rotation.loader import load_rotation
from oncall.store import IncidentStore

# Reads are safe to repeat; retried while the system read is unreachable.
read_task = task(
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[1, 2],
    retry_condition_fn=retry_if_transient,
)


@read_task
def gather_incident(store: IncidentStore, incident_id: str) -> Incident:
    """The incident record: alert, transitions, actions, approvals."""
    return store.get(incident_id)


@read_task
def gather_run_history(
    history: RunHistory, incident: Incident
) -> tuple[list[FlowRunRecord], list[LogLine]]:
    """The playbook run's states (pauses included) and task runs, escalation runs, its logs."""
    runs: list[FlowRunRecord] = []
    logs: list[LogLine] = []
    if incident.flow_run_id:
        runs.append(history.record(incident.flow_run_id))
        logs = history.logs(incident.flow_run_id)
    for other in history.tagged(f"incident:{incident.id}", exclude_tag=POSTMORTEM_TAG):
        if str(other.id) != incident.flow_run_id and str(other.id) != flow_run.get_id():
            runs.append(history.record(str(other.id)))
    return runs, logs


@task(cache_policy=NO_CACHE)
def gather_workload_evidence(
    kube: KubeClient, incident: Incident, home: Path
) -> tuple[list[WorkloadEvidence], list[str]]:
    """Logs, events and rollout history of the deployments the incident touched (+ snapshots)."""
    found, gaps = [], []
    for namespace, name in affected_deployments(incident):
        try:
            found.append(collect(kube, namespace, name, window_start(incident), "after resolution"))
        except OncallError as exc:
            gaps.append(f"workload {namespace}/{name}: {exc}")
    return merge(load_snapshots(home, incident.id), found), gaps


@task(cache_policy=NO_CACHE)
def preserve_workload_evidence(kube: KubeClient, incident: Incident, home: Path) -> Path:
    """Seed "Preserve Evidence": keep logs and events before a mitigation replaces the pods."""
    path = save_snapshot(home, incident.id, snapshot(kube, incident))
    get_run_logger().info("Evidence of %s preserved in %s", incident.id, path)
    return path


@task(cache_policy=NO_CACHE)
def gather_metrics(
    settings: PrometheusSettings, incident: Incident, logs: list[LogLine]
) -> tuple[list[MetricSeries], list[str]]:
    """Prometheus range query of the alert's expression, else the playbook's own samples."""
    expr = alert_expression(incident.alert)
    client = PrometheusClient.from_settings(settings) if expr else None
    if client is not None and expr:
        end = incident.transitions[-1].at if incident.transitions else utcnow()
        try:
            series = range_series(client, expr, window_start(incident), end, settings.step_s)
            return series, []
        except OncallError as exc:
            gap = f"Prometheus range query of {expr!r}: {exc}; the playbook's samples are used"
            return playbook_samples(incident.alert, logs), [gap]
        finally:
            client.close()
    return playbook_samples(incident.alert, logs), []


@task(cache_policy=NO_CACHE)
def gather_slack_thread(
    thread: IncidentThread, incident: Incident
) -> tuple[list[SlackMessage] | None, list[str]]:
    """The incident's Slack thread, when Slack is configured and the thread exists."""
    if not thread.configured:
        return None, []
    try:
        root = thread.find(incident.id, since=window_start(incident))
        if root is None:
            return None, [f"no Slack thread for {incident.id} in {thread.channel}"]
        return thread.read(root), []
    except OncallError as exc:
        return None, [f"Slack thread: {exc}"]


@task(cache_policy=NO_CACHE)
def suggest_action_owners(rotation_file: Path, incident: Incident) -> list[OwnerSuggestion]:
    """Owners the rotation suggests: primary on call at the start, the area's experts."""
    return suggest_owners(load_rotation(rotation_file), incident)


@task(cache_policy=NO_CACHE)
def draft(evidence: Evidence) -> str:
    """The postmortem drafted from the evidence after the seeds' templates."""
    return draft_postmortem(evidence)


@task(cache_policy=NO_CACHE)
def publish(home: Path, evidence: Evidence, markdown: str, thread: IncidentThread) -> Path:
    """Markdown artifact keyed by incident, the file and its bundle, the link on Slack."""
    incident_id = evidence.incident.id
    write_bundle(home, evidence)
    path = write_postmortem(home, incident_id, markdown)
    key = artifact_key(incident_id)
    create_markdown_artifact(
        key=key, markdown=markdown, description=f"Postmortem draft of {incident_id}"
    )
    log = get_run_logger()
    log.info("Postmortem of %s written to %s (artifact %s)", incident_id, path, key)
    if thread.configured:
        link = f"Postmortem draft of {incident_id}: {path}"
        if evidence.runs and evidence.runs[0].url:
            base = evidence.runs[0].url.split("/runs/")[0]
            link = f"Postmortem draft of {incident_id}: {base}/artifacts/key/{key} (file {path})"
        try:
            root = thread.find(incident_id, since=window_start(evidence.incident))
            thread.post_link(incident_id, root, link)
        except OncallError as exc:
            log.warning("Postmortem link not posted to Slack: %s", exc)
    return path


def artifact_key(incident_id: str) -> str:
    """`postmortem-<incident id>`, in the letters Prefect allows in a key."""
    clean = "".join(c if c.isalnum() else "-" for c in incident_id.lower())
    return f"postmortem-{clean}"


@read_task
def start_post_incident(prefect: PrefectApi, incident: Incident) -> str | None:
    """Start the post-incident run of a resolved incident; its id (None if not deployed)."""
    run = schedule_postmortem(incident.id, prefect)
    if run is None:
        get_run_logger().warning(
            "Postmortem NOT scheduled: deployment %s is not registered (run `oncall worker`)",
            POSTMORTEM_DEPLOYMENT,
        )
        return None
    return str(run.id)
