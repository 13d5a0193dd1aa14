"""Notifications to people. Until Slack and PagerDuty are configured, they go to the log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from oncall.models import Incident

log = logging.getLogger("oncall.notify")


@dataclass
class Notice:
    """One notification as it was (or would have been) delivered."""

    channel: str
    text: str


@dataclass
class LogNotifier:
    """Writes notifications to the log and says where they would have gone."""

    channel: str = "#incidents"
    sent: list[Notice] = field(default_factory=list)

    def notify(self, incident: Incident, text: str) -> Notice:
        """Announce ``text`` about ``incident``."""
        notice = Notice(channel=self.channel, text=f"{incident.title}: {text}")
        self.sent.append(notice)
        log.info("(no Slack configured; would post to %s) %s", notice.channel, notice.text)
        return notice
