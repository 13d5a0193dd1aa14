"""The weekly on-call hand-off (GremlinsAI rotation; CRONOS "hand off properly at shift end")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel

from oncall.clients.kube import KubeClient
from oncall.clients.slack import SlackClient, SlackSettings
from oncall.errors import OncallError
from oncall.rotation.ledger import HandoffLedger
from oncall.rotation.report import DeploymentChange, build_report
from oncall.rotation.settings import RotationSettings
from oncall.settings import OncallSettings
from oncall.wiring import Clients
from tasks.handoff import (
    hand_over_usergroups,
    post_handoff,
    publish_handoff_artifact,
    read_incidents,
    read_postmortem_actions,
    read_rotation,
    remind_incoming,
    review_recent_deployments,
)

# The GremlinsAI seed's "check recent deployments" pair.
WATCHED = ["gremlinsai/gremlinsai-backend-blue", "gremlinsai/gremlinsai-backend-green"]


class HandoffOutcome(BaseModel):
    """What one hand-off run did."""

    week_start: datetime
    primary: str
    secondary: str
    channel: str
    ts: str
    posted_now: bool
    usergroups: dict[str, list[str]]


def _instant(at: datetime | None) -> datetime:
    """``at``, else the run's scheduled time (a late cron run still hands over its week)."""
    if at is not None:
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    scheduled = flow_run.scheduled_start_time
    return datetime.fromtimestamp(scheduled.timestamp(), UTC)


def _kube(clients: Clients) -> KubeClient | str:
    try:
        return clients.kube
    except OncallError as exc:
        return f"cluster not reachable: {exc}"


@flow(name="oncall-handoff", log_prints=True)
def oncall_handoff(
    at: datetime | None = None,
    rotation_file: str | None = None,
    watched: list[str] = WATCHED,
    channel: str | None = None,
) -> HandoffOutcome:
    """Hand the pager over: post the week's report, move the Slack user groups, keep an artifact."""
    settings, slack_settings = OncallSettings(), SlackSettings()
    clients = Clients(settings)
    rotation = read_rotation(Path(rotation_file) if rotation_file else RotationSettings().path)
    instant = _instant(at)
    incoming = rotation.on_call(instant)
    outgoing_start = rotation.handoff_at(incoming.week_index - 1)

    # Shift end: the outgoing week's incidents and what is still open.
    incidents = read_incidents(clients.store, outgoing_start)
    postmortems = read_postmortem_actions(settings.home / "postmortems")
    # Shift start: review recent changes of the watched services.
    kube = _kube(clients)
    deployments: list[DeploymentChange] = []
    problems: list[str] = []
    if isinstance(kube, str):
        problems.append(kube)
    else:
        deployments, problems = review_recent_deployments(kube, watched, outgoing_start)
    report = build_report(
        rotation, instant, incidents, deployments, postmortems, problems, now=datetime.now(UTC)
    )

    slack = SlackClient.from_settings(slack_settings)
    ledger = HandoffLedger(settings.store_url)
    target = channel or slack_settings.channel
    posted, fresh = post_handoff(slack, ledger, target, report)
    groups = hand_over_usergroups(slack, ledger, rotation, incoming)
    publish_handoff_artifact(report)
    get_run_logger().info(
        "Week %d: primary %s, secondary %s",
        incoming.week_number,
        incoming.primary.name,
        incoming.secondary.name,
    )
    return HandoffOutcome(
        week_start=incoming.week_start,
        primary=incoming.primary.name,
        secondary=incoming.secondary.name,
        channel=posted.channel,
        ts=posted.ts,
        posted_now=fresh,
        usergroups=groups,
    )


@flow(name="oncall-handoff-reminder", log_prints=True)
def oncall_handoff_reminder(
    at: datetime | None = None, rotation_file: str | None = None, channel: str | None = None
) -> HandoffOutcome:
    """The day before a hand-off, remind whoever comes on call."""
    settings, slack_settings = OncallSettings(), SlackSettings()
    rotation = read_rotation(Path(rotation_file) if rotation_file else RotationSettings().path)
    instant = _instant(at)
    upcoming = rotation.on_call(rotation.handoff_at(rotation.week_index(instant) + 1))
    slack = SlackClient.from_settings(slack_settings)
    ledger = HandoffLedger(settings.store_url)
    posted, fresh = remind_incoming(
        slack, ledger, channel or slack_settings.channel, upcoming, len(rotation.weeks)
    )
    return HandoffOutcome(
        week_start=upcoming.week_start,
        primary=upcoming.primary.name,
        secondary=upcoming.secondary.name,
        channel=posted.channel,
        ts=posted.ts,
        posted_now=fresh,
        usergroups={},
    )
