"""Who may approve a mitigation from Slack: configured user IDs and user groups' members."""

from __future__ import annotations

import threading
import time

from oncall.clients.slack import SlackClient


class Approvers:
    """``ONCALL_SLACK_APPROVERS``: user IDs (U..., W...) and user group IDs (S...)."""

    def __init__(self, slack: SlackClient, allowed: list[str], cache_s: float = 60.0) -> None:
        self.slack, self.cache_s = slack, cache_s
        self.users = {a for a in allowed if not a.startswith("S")}
        self.groups = [a for a in allowed if a.startswith("S")]
        self._members: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def may_approve(self, user_id: str) -> bool:
        """Whether ``user_id`` is an approver, directly or through a user group."""
        if user_id in self.users:
            return True
        return any(user_id in self.members(group) for group in self.groups)

    def members(self, group: str) -> set[str]:
        """A user group's members (``usergroups.users.list``), cached for a minute."""
        with self._lock:
            cached = self._members.get(group)
        if cached and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        response = self.slack._call(
            f"list members of {group}",
            lambda: self.slack.web.usergroups_users_list(usergroup=group),
        )
        users = {str(u) for u in response.get("users") or []}
        with self._lock:
            self._members[group] = (time.monotonic(), users)
        return users
