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

from oncall.clients.pagerduty import SEVERITIES, EventAction, PagerDutyClient
from oncall.errors import TransientError
from oncall.models import DEFAULT_PAGE_POLICY, Action, Approval, Incident, PagePolicy
from oncall.store import IncidentStore

log = logging.getLogger("oncall.notify")

PAGED = "paged"  # the Action recorded when PagerDuty was asked to wake someone
PAGE_RESOLVED = "page-resolved"  # ... and when that page was resolved


class Notifier(Protocol):
    """What the playbook steps tell the people working an incident."""

    def opened(self, incident: Incident) -> None:
        """An incident was opened (or picked up again by a re-run)."""

    def acknowledged(self, incident: Incident) -> None:
        """A person has taken the incident (``incident.acknowledged_by``)."""

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
        """Log who took the incident."""
        self.notify(incident, f"acknowledged by {incident.acknowledged_by}")

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
    """Keeps the PagerDuty incident (``dedup_key`` = our incident id) in step with ours.

    The pager stays with people: a ``trigger`` wakes someone when the incident's page
    policy says so (at once, or only when a person is needed: an approval, an
    escalation), and only a person's answer sends ``acknowledge``; an acknowledged
    PagerDuty incident stops its escalation policy, so the automation never sends one on
    its own. ``resolve`` follows only a page that was sent.
    """

    def __init__(
        self,
        client: PagerDutyClient,
        run_url: Callable[[str], str | None],
        routing_key_for: Callable[[Incident], str | None] | None = None,
        policy_for: Callable[[Incident], PagePolicy] | None = None,
        store: IncidentStore | None = None,
    ) -> None:
        self.client, self.run_url, self.routing_key_for = client, run_url, routing_key_for
        self.policy_for = policy_for or (lambda incident: DEFAULT_PAGE_POLICY[incident.severity])
        self.store = store
        self._paged: set[str] = set()

    def _key(self, incident: Incident) -> str | None:
        """The incident's service's own integration key (None: the configured one)."""
        return self.routing_key_for(incident) if self.routing_key_for else None

    def paged(self, incident: Incident) -> bool:
        """Whether a page went out for the incident (by this process or an earlier run)."""
        if incident.id in self._paged:
            return True
        current = self.store.get(incident.id) if self.store is not None else incident
        pages = [a.kind for a in current.actions if a.kind in (PAGED, PAGE_RESOLVED)]
        return bool(pages) and pages[-1] == PAGED

    def page(self, incident: Incident, why: str) -> None:
        """Trigger the PagerDuty incident (once; PagerDuty dedups a repeat) and record it."""
        alert = incident.alert
        if alert.labels.get("source") == "pagerduty" or self.paged(incident):
            return  # PagerDuty already pages for it
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
            custom_details={
                "incident": incident.id,
                "why": why,
                **alert.labels,
                **alert.annotations,
            },
            links=links,
            routing_key=self._key(incident),
        )
        self._paged.add(incident.id)
        if self.store is not None:
            self.store.add_action(
                incident.id,
                Action(kind=PAGED, target="pagerduty", detail={"why": why}),
            )

    def opened(self, incident: Incident) -> None:
        """Page at once when the severity's policy says so."""
        if self.policy_for(incident) is PagePolicy.IMMEDIATELY:
            self.page(incident, "opened")

    def acknowledged(self, incident: Incident) -> None:
        """A person has the incident: acknowledge the page on their behalf."""
        if self.paged(incident):
            self.client.acknowledge(incident.id, self._key(incident))

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Steps stay in Slack."""

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """A person is needed: page, unless the policy keeps this severity in Slack."""
        if self.policy_for(incident) is not PagePolicy.NEVER:
            self.page(incident, "approval requested")

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Approvals happen in Slack or the Prefect UI."""

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """A person is needed: page (PagerDuty's escalation policy takes it from there)."""
        if self.policy_for(incident) is not PagePolicy.NEVER:
            self.page(incident, f"escalated: {reason}")

    def resolved(self, incident: Incident, detail: str) -> None:
        """Resolve the page, if there was one; an unpaged incident stays out of PagerDuty."""
        if not self.paged(incident):
            return
        self.client.resolve(incident.id, self._key(incident))
        self._paged.discard(incident.id)
        if self.store is not None:  # a reopened incident pages afresh
            self.store.add_action(incident.id, Action(kind=PAGE_RESOLVED, target="pagerduty"))


class PagerDutyLog(PagerDutyNotifier):
    """Without a routing key: says which PagerDuty events would have been sent."""

    def __init__(self, policy_for: Callable[[Incident], PagePolicy] | None = None) -> None:
        super().__init__(_WouldSend(), lambda _: None, policy_for=policy_for)


class _WouldSend(PagerDutyClient):
    """A PagerDuty client that logs its events instead of sending them."""

    def __init__(self) -> None:
        self.routing_key = ""

    def send(
        self,
        action: EventAction,
        dedup_key: str,
        extra: dict[str, Any] | None = None,
        routing_key: str | None = None,
    ) -> str:
        """Log the event that would have gone out."""
        log.info(
            "(no PagerDuty configured; would have sent) %s dedup_key=%s "
            "(set ONCALL_PAGERDUTY_ROUTING_KEY)",
            action,
            dedup_key,
        )
        return dedup_key


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

    def without(self, name: str) -> Notifications:
        """The same channels but ``name`` (e.g. PagerDuty, when it told us itself)."""
        kept = Notifications([], self.store, self.cooldown_s)
        kept.channels = [c for c in self.channels if c.name != name]
        return kept

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
        """Tell every channel a person has the incident."""
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
