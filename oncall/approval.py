"""The approval form: one RunInput shared by the Prefect UI, the CLI and Slack."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field


class ApprovalDecision(RunInput):
    """A human's answer to "may the playbook apply this mitigation?"."""

    approve: bool = Field(description="Tick to approve the mitigation; leave unticked to reject.")
    approver: str = Field(min_length=1, description="Who decides (name or handle); recorded.")
    reason: str = Field(default="", description="Why: kept on the incident and in the postmortem.")
