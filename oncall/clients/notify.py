"""Notifications to people: Slack, PagerDuty, or the log when neither is configured.

A playbook step calls one `Notifier`; `Notifications` fans the call out to every
configured channel and never lets a channel's failure fail or delay a remediation: the
failure is logged and recorded on the incident (Action ``notify-error``), and a channel
that is down is skipped for a while instead of being waited on at every step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from oncall.clients.pagerduty import SEVERITIES, PagerDutyClient
from oncall.errors import TransientError
from oncall.models import Action, Approval, Incident
from oncall.store import IncidentStore

log = logging.getLogger("oncall.notify")


class Notifier(Protocol):
    """What the playbook steps tell the people working an incident."""

    def opened(self, incident: Incident) -> None:
        """An incident was opened (or picked up again by a re-run)."""

    def acknowledged(self, incident: Incident) -> None:
        """The playbook has taken the incident."""

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """The playbook moved on: ``text`` is the current step, ``detail`` its evidence."""

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """The run is paused until someone approves or rejects the plan."""

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Someone decided (or nobody did in time)."""

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """The incident goes to people: ``contacts`` are the rotation's ``Name (U...)``."""

    def resolved(self, incident: Incident, detail: str) -> None:
        """The mitigation was verified; the incident is over."""


@dataclass
class Notice:
    """One notification as it was (or would have been) delivered."""

    channel: str
    text: str


@dataclass
class LogNotifier:
    """Writes notifications to the log and says where they would have gone."""

    channel: str = "#incidents"
    service: str = "Slack"
    sent: list[Notice] = field(default_factory=list)

    def notify(self, incident: Incident, text: str) -> Notice:
        """Announce ``text`` about ``incident``."""
        notice = Notice(channel=self.channel, text=f"{incident.title}: {text}")
        self.sent.append(notice)
        log.info(
            "(no %s configured; would have gone to %s) %s",
            self.service,
            notice.channel,
            notice.text,
        )
        return notice

    def opened(self, incident: Incident) -> None:
        """Log the new incident."""
        self.notify(incident, f"opened ({incident.id})")

    def acknowledged(self, incident: Incident) -> None:
        """Log the acknowledgement."""
        self.notify(incident, f"acknowledged by playbook {incident.playbook}")

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Log the step."""
        self.notify(incident, text)

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """Log that the run waits for a decision."""
        self.notify(incident, f"waiting for approval of flow run {flow_run_id}")

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Log the decision."""
        self.notify(incident, f"{approval.decision} by {approval.approver}")

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """Log the escalation and who it goes to."""
        self.notify(incident, f"ESCALATED to {', '.join(contacts) or 'the on-call'}: {reason}")

    def resolved(self, incident: Incident, detail: str) -> None:
        """Log the resolution."""
        self.notify(incident, f"RESOLVED: {detail}")


class PagerDutyNotifier:
    """Keeps the PagerDuty incident (``dedup_key`` = our incident id) in step with ours."""

    def __init__(
        self,
        client: PagerDutyClient,
        run_url: Callable[[str], str | None],
        routing_key_for: Callable[[Incident], str | None] | None = None,
    ) -> None:
        self.client, self.run_url, self.routing_key_for = client, run_url, routing_key_for

    def _key(self, incident: Incident) -> str | None:
        """The incident's service's own integration key (None: the configured one)."""
        return self.routing_key_for(incident) if self.routing_key_for else None

    def opened(self, incident: Incident) -> None:
        """Trigger, unless the incident came from PagerDuty in the first place."""
        alert = incident.alert
        if alert.labels.get("source") == "pagerduty":
            return
        links = (
            [{"href": alert.generator_url, "text": "Alert source"}] if alert.generator_url else []
        )
        if incident.flow_run_id and (url := self.run_url(incident.flow_run_id)):
            links.append({"href": url, "text": "Prefect flow run"})
        self.client.trigger(
            incident.id,
            incident.title,
            source=alert.labels.get("instance") or alert.service,
            severity=SEVERITIES[incident.severity],
            timestamp=alert.starts_at.isoformat(),
            component=alert.service,
            group=alert.labels.get("namespace"),
            event_class=alert.name,
            custom_details={"incident": incident.id, **alert.labels, **alert.annotations},
            links=links,
            routing_key=self._key(incident),
        )

    def acknowledged(self, incident: Incident) -> None:
        """Acknowledge: the playbook is on it."""
        self.client.acknowledge(incident.id, self._key(incident))

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Steps stay in Slack."""

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """Approvals happen in Slack or the Prefect UI."""

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Approvals happen in Slack or the Prefect UI."""

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """PagerDuty runs its own escalation policy on the open incident."""

    def resolved(self, incident: Incident, detail: str) -> None:
        """Resolve: verified."""
        self.client.resolve(incident.id, self._key(incident))


class PagerDutyLog(LogNotifier):
    """Without a routing key: says which PagerDuty events would have been sent."""

    def __init__(self) -> None:
        super().__init__(channel="PagerDuty Events v2", service="PagerDuty")

    def _event(self, incident: Incident, action: str) -> None:
        self.notify(incident, f"{action} dedup_key={incident.id} (no ONCALL_PAGERDUTY_ROUTING_KEY)")

    def opened(self, incident: Incident) -> None:
        """Log the trigger."""
        if incident.alert.labels.get("source") != "pagerduty":
            self._event(incident, "trigger")

    def acknowledged(self, incident: Incident) -> None:
        """Log the acknowledge event."""
        self._event(incident, "acknowledge")

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Steps stay in Slack."""

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """Nothing for PagerDuty."""

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Nothing for PagerDuty."""

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """PagerDuty escalates on its own."""

    def resolved(self, incident: Incident, detail: str) -> None:
        """Log the resolve event."""
        self._event(incident, "resolve")


@dataclass
class _Channel:
    name: str
    notifier: Notifier
    down_until: float = 0.0


class Notifications:
    """Every configured channel; failures are recorded on the incident, never raised."""

    def __init__(
        self,
        channels: list[tuple[str, Notifier]],
        store: IncidentStore | None,
        cooldown_s: float = 60.0,
    ) -> None:
        self.channels = [_Channel(name, notifier) for name, notifier in channels]
        self.store, self.cooldown_s = store, cooldown_s

    def _each(self, incident: Incident, what: str, call: Callable[[Notifier], None]) -> None:
        for channel in self.channels:
            if time.monotonic() < channel.down_until:
                log.warning("%s is down; not sending %s for %s", channel.name, what, incident.id)
                continue
            try:
                call(channel.notifier)
            except Exception as exc:  # a notification never fails a remediation
                if isinstance(exc, TransientError):
                    # Down: skip it for a while rather than wait on it at every step.
                    channel.down_until = time.monotonic() + self.cooldown_s
                self._record(incident, channel.name, what, exc)

    def _record(self, incident: Incident, channel: str, what: str, exc: Exception) -> None:
        log.error("%s notification (%s) of %s failed: %s", channel, what, incident.id, exc)
        if self.store is None:
            return
        try:
            self.store.add_action(
                incident.id,
                Action(
                    kind="notify-error",
                    target=channel,
                    detail={"notification": what, "error": str(exc), "type": type(exc).__name__},
                ),
            )
        except Exception as store_exc:
            log.error("could not record the %s failure on %s: %s", channel, incident.id, store_exc)

    def opened(self, incident: Incident) -> None:
        """Tell every channel about the new incident."""
        self._each(incident, "opened", lambda n: n.opened(incident))

    def acknowledged(self, incident: Incident) -> None:
        """Tell every channel the playbook has the incident."""
        self._each(incident, "acknowledged", lambda n: n.acknowledged(incident))

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Tell every channel about a step."""
        self._each(incident, "step", lambda n: n.step(incident, text, detail))

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """Ask for a decision wherever people can give one."""
        self._each(
            incident,
            "approval_requested",
            lambda n: n.approval_requested(incident, flow_run_id, plan_markdown),
        )

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Show the decision."""
        self._each(incident, "approval_decided", lambda n: n.approval_decided(incident, approval))

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """Hand the incident to people."""
        self._each(incident, "escalated", lambda n: n.escalated(incident, reason, contacts))

    def resolved(self, incident: Incident, detail: str) -> None:
        """Announce the resolution."""
        self._each(incident, "resolved", lambda n: n.resolved(incident, detail))

    def notify(self, incident: Incident, text: str) -> None:
        """A free-text note: a step without evidence."""
        self.step(incident, text)


def build_notifier(
    store: IncidentStore,
    run_url: Callable[[str], str | None],
    channel_for: Callable[[Incident], str | None] | None = None,
    routing_key_for: Callable[[Incident], str | None] | None = None,
) -> Notifications:
    """The channels the environment configures; the log says where the rest would have gone.

    ``channel_for`` names an incident's own Slack channel (its catalog service's), if any;
    ``routing_key_for`` its service's own PagerDuty integration key.
    """
    from oncall.clients.pagerduty import PagerDutySettings
    from oncall.clients.slack import SlackSettings
    from oncall.slack.notifier import SlackNotifier

    channels: list[tuple[str, Notifier]] = []
    slack_settings = SlackSettings()
    if slack_settings.bot_token is not None and slack_settings.bot_token.get_secret_value():
        slack = SlackNotifier.from_settings(slack_settings, store, run_url, channel_for)
        channels.append(("slack", slack))
    else:
        channels.append(("log", LogNotifier(channel=slack_settings.channel)))
    pagerduty = PagerDutyClient.from_settings(PagerDutySettings())
    if pagerduty is not None:
        channels.append(("pagerduty", PagerDutyNotifier(pagerduty, run_url, routing_key_for)))
    else:
        channels.append(("pagerduty-log", PagerDutyLog()))
    return Notifications(channels, store)
