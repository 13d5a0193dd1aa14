"""The weekly on-call hand-off: gather the report, tell Slack once, move the user groups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from oncall.clients.kube import KubeClient
from oncall.clients.slack import PostedMessage, SlackClient
from oncall.errors import OncallError
from oncall.models import Incident
from oncall.retrying import retry_if_transient
from oncall.rotation.ledger import HandoffLedger, step_key
from oncall.rotation.loader import load_rotation
from oncall.rotation.model import OnCall, Role, Rotation
from oncall.rotation.postmortems import open_action_items
from oncall.rotation.render import render_markdown, render_reminder, render_slack
from oncall.rotation.report import DeploymentChange, HandoffReport, PostmortemActions
from oncall.store import IncidentStore

HANDOFF_EVENT = "oncall_handoff"
REMINDER_EVENT = "oncall_handoff_reminder"
# Enough for a week of incidents of a small team; older ones are not in the report.
_INCIDENT_SCAN = 1000

io_task = task(
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_condition_fn=retry_if_transient,
)


@task(cache_policy=NO_CACHE)
def read_rotation(path: Path) -> Rotation:
    """Load and validate the rotation file."""
    return load_rotation(path)


@io_task
def read_incidents(store: IncidentStore, since: datetime) -> list[Incident]:
    """Incidents still open or opened since ``since`` (the outgoing week's start)."""
    found = store.list(limit=_INCIDENT_SCAN)
    return [
        incident
        for incident in found
        if incident.status != "resolved"
        or (incident.transitions and incident.transitions[0].at >= since)
    ]


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 2])
def review_recent_deployments(
    kube: KubeClient, watched: list[str], since: datetime
) -> tuple[list[DeploymentChange], list[str]]:
    """Rollouts of the watched ``namespace/deployment``s since ``since`` (CRONOS: shift start)."""
    changes: list[DeploymentChange] = []
    problems: list[str] = []
    for target in watched:
        namespace, _, name = target.partition("/")
        try:
            history = kube.rollout_history(namespace, name)
        except OncallError as exc:
            problems.append(f"rollout history of {target}: {exc}")
            continue
        recent = [r for r in history if r.created_at >= since]
        shown = recent or history[-1:]  # no rollout this week: say what is running
        changes += [
            DeploymentChange(
                namespace=namespace,
                deployment=name,
                revision=r.revision,
                images=r.images,
                rolled_out_at=r.created_at,
                change_cause=r.change_cause,
                recent=bool(recent),
            )
            for r in shown
        ]
    return changes, problems


@task(cache_policy=NO_CACHE)
def read_postmortem_actions(directory: Path) -> list[PostmortemActions]:
    """Postmortems (Markdown under ONCALL_HOME/postmortems) with unchecked action items."""
    return open_action_items(directory)


@io_task
def post_handoff(
    slack: SlackClient, ledger: HandoffLedger, channel: str, report: HandoffReport
) -> tuple[PostedMessage, bool]:
    """Post the hand-off to the channel once per week; returns the message and if it is new."""
    text, blocks = render_slack(report)
    key = step_key("handoff", report.week_start, "message")
    if not slack.enabled:
        return slack.post_message(channel, text, blocks), False

    def post() -> dict[str, Any]:
        # A run that died after posting left no record: Slack's history has the message.
        found = slack.find_message(channel, HANDOFF_EVENT, key, oldest=report.week_start)
        if found is None:
            metadata = {"event_type": HANDOFF_EVENT, "event_payload": {"key": key}}
            found = slack.post_message(channel, text, blocks, metadata=metadata)
        return {"channel": found.channel, "ts": found.ts}

    detail, fresh = ledger.run_once(key, post)
    log = get_run_logger()
    if fresh:
        log.info("Hand-off posted to %s (ts %s)", detail["channel"], detail["ts"])
    else:
        log.info("Hand-off of this week was already posted (ts %s): not again", detail["ts"])
    return PostedMessage(detail["channel"], detail["ts"]), fresh


@io_task
def hand_over_usergroups(
    slack: SlackClient, ledger: HandoffLedger, rotation: Rotation, incoming: OnCall
) -> dict[str, list[str]]:
    """Make the primary and secondary Slack user groups hold exactly this week's people."""
    result: dict[str, list[str]] = {}
    for role in (Role.PRIMARY, Role.SECONDARY):
        group = rotation.usergroups.get(role)
        if group is None:
            continue
        members = [incoming.holder(role).slack_user_id]
        if not slack.enabled:
            result[group] = slack.set_usergroup_members(group, members)
            continue
        key = step_key("handoff", incoming.week_start, f"usergroup:{group}")
        detail, fresh = ledger.run_once(key, _usergroup_step(slack, group, members))
        get_run_logger().info(
            "%s user group %s: %s%s",
            role.label,
            group,
            ", ".join(detail["users"]),
            "" if fresh else " (already done this week)",
        )
        result[group] = list(detail["users"])
    return result


def _usergroup_step(
    slack: SlackClient, group: str, members: list[str]
) -> Callable[[], dict[str, Any]]:
    return lambda: {"users": slack.set_usergroup_members(group, members)}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def publish_handoff_artifact(report: HandoffReport) -> UUID:
    """Keep the report as the run's Markdown artifact (key ``oncall-handoff``)."""
    artifact_id: UUID = create_markdown_artifact(  # type: ignore[assignment]
        key="oncall-handoff",
        markdown=render_markdown(report),
        description=f"On-call hand-off of {report.week_start:%Y-%m-%d %H:%M %Z}",
    )
    return artifact_id


@io_task
def remind_incoming(
    slack: SlackClient,
    ledger: HandoffLedger,
    channel: str,
    upcoming: OnCall,
    cycle_length: int,
) -> tuple[PostedMessage, bool]:
    """Remind whoever comes on call at the next hand-off, once per week."""
    text = render_reminder(upcoming, cycle_length)
    key = step_key("reminder", upcoming.week_start, "message")
    if not slack.enabled:
        return slack.post_message(channel, text), False

    def post() -> dict[str, Any]:
        oldest = upcoming.week_start - timedelta(days=7)
        found = slack.find_message(channel, REMINDER_EVENT, key, oldest=oldest)
        if found is None:
            metadata = {"event_type": REMINDER_EVENT, "event_payload": {"key": key}}
            found = slack.post_message(channel, text, metadata=metadata)
        return {"channel": found.channel, "ts": found.ts}

    detail, fresh = ledger.run_once(key, post)
    return PostedMessage(detail["channel"], detail["ts"]), fresh
