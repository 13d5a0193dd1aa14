"""The incident's Slack thread: find it, read it, reply with the postmortem link.

The thread is the message whose metadata is ``event_type`` `INCIDENT_EVENT` with
``event_payload.key`` = the incident id (how the notifier should post incidents).
"""

from __future__ import annotations

from datetime import datetime

from oncall.clients.slack import PostedMessage, SlackClient, SlackSettings
from oncall.postmortem.evidence import SlackMessage

INCIDENT_EVENT = "oncall_incident"
POSTMORTEM_EVENT = "oncall_postmortem"


class IncidentThread:
    """Reads and replies to one incident's thread in the incident channel."""

    def __init__(self, slack: SlackClient, settings: SlackSettings) -> None:
        self.slack, self.channel = slack, settings.channel

    @property
    def configured(self) -> bool:
        """Whether Slack has a bot token (else nothing is read or posted)."""
        return self.slack.enabled

    def find(self, incident_id: str, since: datetime) -> PostedMessage | None:
        """The incident's root message, if the notifier posted one."""
        return self.slack.find_message(self.channel, INCIDENT_EVENT, incident_id, oldest=since)

    def read(self, root: PostedMessage) -> list[SlackMessage]:
        """Every message of the thread, root first (`conversations.replies`)."""
        response = self.slack._call(
            f"read thread {root.ts} of {root.channel}",
            lambda: self.slack.web.conversations_replies(channel=root.channel, ts=root.ts),
        )
        return [
            SlackMessage(
                ts=str(m.get("ts", "")),
                user=str(m.get("user") or m.get("username") or m.get("bot_id") or "?"),
                text=str(m.get("text", "")),
            )
            for m in response.get("messages") or []
        ]

    def post_link(self, incident_id: str, root: PostedMessage | None, text: str) -> PostedMessage:
        """Reply in the thread (or post in the channel when there is no thread)."""
        return self.slack.post_message(
            root.channel if root else self.channel,
            text,
            thread_ts=root.ts if root else None,
            metadata={"event_type": POSTMORTEM_EVENT, "event_payload": {"key": incident_id}},
        )
