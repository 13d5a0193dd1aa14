"""Flows the warm runner tests serve: one that waits for approval, one that keeps working."""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.flow_runs import pause_flow_run

from oncall.approval import ApprovalDecision


@flow(name="awaiting-approval")
def awaiting_approval() -> bool:
    """Pause for a human decision, like every playbook before a rollback; return it."""
    decision = pause_flow_run(wait_for_input=ApprovalDecision, timeout=900, poll_interval=5)
    return decision.approve


@task
def tick(i: int) -> int:
    """One short step: a point where the engine checks for a suspension request."""
    time.sleep(0.2)
    return i


@flow(name="long-checks")
def long_checks(steps: int = 600) -> int:
    """Run short steps for a long time (about two minutes)."""
    return sum(tick(i) for i in range(steps))
