"""A flow that pauses for an approval, like every playbook before a rollback."""

from __future__ import annotations

from prefect import flow
from prefect.flow_runs import pause_flow_run

from oncall.approval import ApprovalDecision


@flow(name="paused-probe")
def paused_probe() -> bool:
    """Wait for a human decision, then end."""
    decision = pause_flow_run(wait_for_input=ApprovalDecision, timeout=900, poll_interval=10)
    return decision.approve
