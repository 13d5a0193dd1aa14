"""The approval form, and who decided through which channel.

One RunInput is shared by the Prefect UI, the CLI, the intake's approval endpoint and
Slack. A decision is *verified* when it carries an attestation: an HMAC, under the
approval key the intake and the worker share, of the run, the verdict, the approver and
the channel. The intake adds it after checking the person (Slack's signed user id, an
approver token); a form filled in the Prefect UI has none, and is recorded as typed,
unverified. Under the `verified_approver_required` policy (default: rollbacks and
service switches of P1 and P2 incidents) an unverified decision is refused and the run
keeps waiting. An empty or blank approver is never a decision.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Any

from prefect.input import RunInput
from pydantic import Field, field_validator

from oncall.settings import OncallSettings, secret_file

KEY_FILE = "approval-key"
UI_CHANNEL = "Prefect UI"
# Channels a verified decision can come through.
CHANNELS = ("slack", "api", "cli", "drill")


class ApprovalDecision(RunInput):
    """A human's answer to "may the playbook apply this mitigation?"."""

    approve: bool = Field(description="Tick to approve the mitigation; leave unticked to reject.")
    approver: str = Field(min_length=1, description="Who decides (name or handle); recorded.")
    reason: str = Field(default="", description="Why: kept on the incident and in the postmortem.")
    attestation: str = Field(
        default="",
        description="Leave empty. Slack and `oncall approve` fill it in for verified approvers.",
    )

    @field_validator("approver")
    @classmethod
    def _someone(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an approver is required: who decides")
        return value.strip()


def approval_key(settings: OncallSettings) -> bytes:
    """The key decisions are attested with: ONCALL_APPROVAL_KEY, else generated under home."""
    explicit = os.environ.get("ONCALL_APPROVAL_KEY", "")
    if explicit:
        return explicit.encode()
    return secret_file(settings.home / KEY_FILE, lambda: secrets.token_urlsafe(32)).encode()


def _mac(key: bytes, flow_run_id: str, approve: bool, approver: str, channel: str) -> str:
    message = f"v1\n{flow_run_id}\n{int(approve)}\n{approver.strip()}\n{channel}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def attest(key: bytes, flow_run_id: str, approve: bool, approver: str, channel: str) -> str:
    """The attestation of one verified decision: `v1:<channel>:<hmac>`."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown approval channel {channel!r}")
    return f"v1:{channel}:{_mac(key, flow_run_id, approve, approver, channel)}"


def signed_input(
    key: bytes,
    flow_run_id: str,
    *,
    approve: bool,
    approver: str,
    reason: str,
    channel: str,
) -> dict[str, Any]:
    """The run input of a decision taken by a verified approver."""
    return {
        "approve": approve,
        "approver": approver,
        "reason": reason,
        "attestation": attest(key, flow_run_id, approve, approver, channel),
    }


def verified_channel(key: bytes, flow_run_id: str, decision: ApprovalDecision) -> str | None:
    """The channel of a decision whose attestation holds; None for an unverified one."""
    version, _, rest = decision.attestation.partition(":")
    channel, _, mac = rest.partition(":")
    if version != "v1" or channel not in CHANNELS or not mac:
        return None
    expected = _mac(key, flow_run_id, decision.approve, decision.approver, channel)
    return channel if hmac.compare_digest(mac, expected) else None
