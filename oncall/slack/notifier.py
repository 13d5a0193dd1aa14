"""The Slack side of the notifier: one message per incident, edited in place, details threaded.

The root message carries metadata ``oncall_incident`` / key = incident id (what the
postmortem's thread reader looks for). Where it lives is kept in the Slack ledger, so a
retried or re-run step edits the same message instead of posting another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from oncall.clients.slack import PostedMessage, SlackClient, SlackRefused, SlackSettings
from oncall.models import Approval, Incident
from oncall.postmortem.slack_thread import INCIDENT_EVENT
from oncall.slack.blocks import detail_text, incident_blocks, incident_text, mentions
from oncall.slack.ledger import MessageRef, MessageState, SlackLedger
from oncall.store import IncidentStore


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Honours ``Retry-After`` only up to ``max_wait_s``: a remediation never waits longer."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = {k.lower(): v for k, v in response.headers.items()}.get("retry-after") or ["1"]
        try:
            wait = float(values[0])
        except ValueError:
            return False
        return wait <= self.max_wait_s


def bounded_client(settings: SlackSettings, max_wait_s: float = 5.0) -> SlackClient:
    """A Slack client whose rate-limit retries never wait more than ``max_wait_s``."""
    client = SlackClient.from_settings(settings)
    client.web.retry_handlers = [
        BoundedRateLimitRetryHandler(settings.max_retries, max_wait_s)
        if isinstance(handler, RateLimitErrorRetryHandler)
        else handler
        for handler in client.web.retry_handlers
    ]
    return client


class SlackNotifier:
    """Posts and edits the incident's message in the incidents channel; replies in its thread."""

    def __init__(
        self,
        slack: SlackClient,
        channel: str,
        ledger: SlackLedger,
        run_url: Callable[[str], str | None],
        channel_for: Callable[[Incident], str | None] | None = None,
    ) -> None:
        self.slack, self.channel, self.ledger, self.run_url = slack, channel, ledger, run_url
        self.channel_for = channel_for

    @classmethod
    def from_settings(
        cls,
        settings: SlackSettings,
        store: IncidentStore,
        run_url: Callable[[str], str | None],
        channel_for: Callable[[Incident], str | None] | None = None,
    ) -> SlackNotifier:
        """A notifier for the configured channel, its ledger in the incident store's database."""
        ledger = SlackLedger(store.engine)
        return cls(bounded_client(settings), settings.channel, ledger, run_url, channel_for)

    def channel_of(self, incident: Incident) -> str:
        """Where the incident's message goes: its service's channel, else the configured one."""
        own = self.channel_for(incident) if self.channel_for else None
        return own or self.channel

    # -- the one message ---------------------------------------------------------------
    def state(self, incident: Incident) -> MessageState:
        """What the incident's message shows now (empty before it is posted)."""
        ref = self.ledger.message(incident.id)
        return ref.state if ref else MessageState()

    def show(self, incident: Incident, state: MessageState) -> MessageRef:
        """Post the incident's message, or edit it in place once it exists."""
        url = self.run_url(incident.flow_run_id) if incident.flow_run_id else None
        text, blocks = incident_text(incident, state), incident_blocks(incident, state, url)
        ref = self.ledger.message(incident.id)
        if ref is None:
            found = self._posted_before(incident)
            if found is None:
                posted = self.slack.post_message(
                    self.channel_of(incident),
                    text,
                    blocks,
                    metadata={"event_type": INCIDENT_EVENT, "event_payload": {"key": incident.id}},
                )
                self.ledger.save(incident.id, posted.channel, posted.ts, state)
                return MessageRef(posted.channel, posted.ts, state)
            ref = MessageRef(found.channel, found.ts, state)
        self.slack.update_message(ref.channel, ref.ts, text, blocks)
        self.ledger.save(incident.id, ref.channel, ref.ts, state)
        return MessageRef(ref.channel, ref.ts, state)

    def _posted_before(self, incident: Incident) -> PostedMessage | None:
        """The message a step that died before recording it had posted (if history is readable)."""
        try:
            return self.slack.find_message(self.channel_of(incident), INCIDENT_EVENT, incident.id)
        except SlackRefused:  # e.g. missing_scope (channels:history): post a new one
            return None

    def reply(self, ref: MessageRef, text: str) -> None:
        """A reply in the incident's thread."""
        if ref.ts:
            self.slack.post_message(ref.channel, text, thread_ts=ref.ts)

    def _step(self, incident: Incident, step: str, reply: str | None = None) -> MessageRef:
        state = self.state(incident)
        state.step = step
        ref = self.show(incident, state)
        if reply:
            self.reply(ref, reply)
        return ref

    # -- the Notifier protocol ---------------------------------------------------------
    def opened(self, incident: Incident) -> None:
        """Post the incident's message; the alert's labels and annotations go in its thread."""
        alert = incident.alert
        self._step(
            incident,
            f"Opened; playbook `{incident.playbook or '-'}` is working it",
            detail_text(
                f"Alert `{alert.name}` firing since {alert.starts_at.isoformat()}",
                {"labels": alert.labels, "annotations": alert.annotations},
            ),
        )

    def acknowledged(self, incident: Incident) -> None:
        """Show who has the incident."""
        self._step(incident, f"Acknowledged by {incident.acknowledged_by}")

    def step(self, incident: Incident, text: str, detail: dict[str, Any] | None = None) -> None:
        """Show the current step; its evidence goes in the thread."""
        self._step(incident, text, detail_text(text, detail))

    def approval_requested(self, incident: Incident, flow_run_id: str, plan_markdown: str) -> None:
        """Put the plan and the Approve / Reject buttons on the incident's message."""
        state = self.state(incident)
        state.step = "Waiting for approval"
        state.approval = {
            "n": len(incident.approvals) + 1,
            "flow_run": flow_run_id,
            "plan": plan_markdown,
            "status": "pending",
        }
        ref = self.show(incident, state)
        self.reply(ref, "Approval needed: the plan and the buttons are on the message above.")

    def approval_decided(self, incident: Incident, approval: Approval) -> None:
        """Replace the buttons with who decided and when."""
        state = self.state(incident)
        if state.approval:
            state.approval.update(
                status=approval.decision,
                by=mentions([approval.approver]),
                at=approval.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                reason=approval.reason,
            )
        state.step = f"Mitigation {approval.decision} by {approval.approver}"
        self.show(incident, state)

    def escalated(self, incident: Incident, reason: str, contacts: list[str]) -> None:
        """Show the escalation and mention the people the rotation names."""
        who = mentions(contacts) or "the on-call"
        self._step(incident, f"Escalated to {who}: {reason}", f":rotating_light: {who}: {reason}")

    def resolved(self, incident: Incident, detail: str) -> None:
        """Show the verified resolution."""
        self._step(incident, f"Resolved: {detail}", f":white_check_mark: Resolved: {detail}")
