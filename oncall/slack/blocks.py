"""Block Kit for the incident message: what a responder sees in the incidents channel."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from oncall.models import Incident
from oncall.slack.ledger import MessageState

APPROVE, REJECT = "oncall_approve", "oncall_reject"
# Block Kit's limit on a section's text.
SECTION_LIMIT = 3000
_MENTION = re.compile(r"\(((?:U|W)[A-Z0-9]{2,})\)")


@dataclass(frozen=True)
class ApprovalButton:
    """What a button click means: which pause of which run, decided how."""

    flow_run_id: str
    n: int
    incident_id: str
    approve: bool

    @property
    def request(self) -> str:
        """The key of the approval request (one decision each)."""
        return f"{self.flow_run_id}#{self.n}"

    def value(self) -> str:
        """The button's ``value``."""
        return json.dumps({"run": self.flow_run_id, "n": self.n, "incident": self.incident_id})

    @classmethod
    def parse(cls, action_id: str, value: str) -> ApprovalButton:
        """Read a clicked button back; ValueError if it is not one of ours."""
        if action_id not in (APPROVE, REJECT):
            raise ValueError(f"unknown action {action_id!r}")
        doc = json.loads(value)
        return cls(str(doc["run"]), int(doc["n"]), str(doc["incident"]), action_id == APPROVE)


def mrkdwn(markdown: str) -> str:
    """Markdown as written for the Prefect UI, in Slack's mrkdwn."""
    text = re.sub(r"^#{1,6}\s*(.+)$", r"*\1*", markdown, flags=re.MULTILINE)
    return text.replace("**", "*")


def mentions(contacts: list[str]) -> str:
    """``Name (U123)`` entries as Slack mentions (``<@U123>``); others as written."""
    out = []
    for contact in contacts:
        found = _MENTION.search(contact)
        out.append(f"<@{found.group(1)}>" if found else contact)
    return ", ".join(out)


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_text(incident: Incident, state: MessageState) -> str:
    """The notification fallback text (and what screen readers say)."""
    return f"{incident.title}: {state.step or incident.status}"


def incident_blocks(
    incident: Incident, state: MessageState, run_url: str | None
) -> list[dict[str, Any]]:
    """The one message of an incident: severity, alert, service, step, links, approval."""
    sev = incident.severity
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(incident.title, 150)}},
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": f"*Severity*\n{sev} ({sev.label}, "
                    f"respond within {sev.response_target})",
                },
                {"type": "mrkdwn", "text": f"*Status*\n{incident.status}"},
                {"type": "mrkdwn", "text": f"*Alert*\n{incident.alert.name}"},
                {"type": "mrkdwn", "text": f"*Service*\n{incident.service}"},
                *(
                    [{"type": "mrkdwn", "text": _clip(f"*Subject*\n`{incident.subject.ref}`")}]
                    if incident.subject
                    else []
                ),
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"*Current step*\n{state.step or 'opened'}")},
        },
    ]
    links = []
    if run_url:
        links.append(f"<{run_url}|Prefect flow run>")
    if incident.alert.generator_url:
        links.append(f"<{incident.alert.generator_url}|Alert source>")
    links.append(f"Incident `{incident.id}`")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
    blocks += approval_blocks(incident, state)
    return blocks


def approval_blocks(incident: Incident, state: MessageState) -> list[dict[str, Any]]:
    """The approval request (plan + buttons) while open; who decided and when after."""
    approval = state.approval
    if not approval:
        return []
    plan = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn(approval["plan"]))}}
    if approval.get("status") == "pending":
        button = ApprovalButton(approval["flow_run"], int(approval["n"]), incident.id, True)
        actions = {
            "type": "actions",
            "block_id": f"approval:{button.request}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": button.value(),
                },
                {
                    "type": "button",
                    "action_id": REJECT,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": button.value(),
                },
            ],
        }
        return [{"type": "divider"}, plan, actions]
    verdict = {"approved": "✅ Approved", "rejected": "❌ Rejected", "timed_out": "⌛ Expired"}
    status = verdict.get(approval["status"], approval["status"])
    line = f"{status} by {approval.get('by', '?')} at {approval.get('at', '?')}"
    if approval["status"] == "timed_out":
        line = f"{status} at {approval.get('at', '?')}"
    if approval.get("reason"):
        line += f": {approval['reason']}"
    return [
        {"type": "divider"},
        plan,
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(line)}]},
    ]


def detail_text(title: str, detail: dict[str, Any] | None) -> str:
    """A thread reply: the step and its evidence as a code block."""
    if not detail:
        return _clip(title)
    body = json.dumps(detail, indent=1, default=str, sort_keys=True)
    return _clip(f"{title}\n```{body}```", 3900)
