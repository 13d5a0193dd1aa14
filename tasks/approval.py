"""The human gate before a destructive step: pause the run and wait for a decision."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run

from oncall.approval import ApprovalDecision
from oncall.clients.notify import Notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Approval, Incident


def await_approval(
    prefect: PrefectApi,
    description: str,
    timeout_s: int,
    poll_s: int,
    notifier: Notifier | None = None,
    incident: Incident | None = None,
) -> tuple[ApprovalDecision | None, Approval]:
    """Pause the flow run until a human approves or rejects in the UI (or Slack, or the CLI).

    With a notifier, the request (plan, Approve / Reject) goes to Slack before the pause
    and the decision after it. On timeout nothing is approved: the caller changes nothing
    and escalates.
    """
    if notifier is not None and incident is not None:
        notifier.approval_requested(incident, str(flow_run.get_id() or ""), description)
    decision, approval = _pause(prefect, description, timeout_s, poll_s)
    if notifier is not None and incident is not None:
        notifier.approval_decided(incident, approval)
    return decision, approval


def _pause(
    prefect: PrefectApi, description: str, timeout_s: int, poll_s: int
) -> tuple[ApprovalDecision | None, Approval]:
    log = get_run_logger()
    log.info(
        "Waiting up to %ds for an approval: %s", timeout_s, prefect.ui_url(flow_run.get_id() or "")
    )
    try:
        decision = pause_flow_run(
            wait_for_input=ApprovalDecision.with_initial_data(
                description=description, approve=False, approver="", reason=""
            ),
            timeout=timeout_s,
            poll_interval=poll_s,
        )
    except FlowPauseTimeout:
        # Prefect leaves the run Paused after its own timeout; move it back to Running so
        # the playbook can escalate and finish with a state that says what happened.
        run_id = flow_run.get_id()
        if run_id:
            prefect.force_running(run_id)  # type: ignore[arg-type]
        log.warning("No decision within %ds: nothing will be changed", timeout_s)
        return None, Approval(
            approver="(nobody)", decision="timed_out", reason=f"no decision within {timeout_s}s"
        )
    verdict = "approved" if decision.approve else "rejected"
    log.info("%s %s the mitigation: %s", decision.approver, verdict, decision.reason or "-")
    return decision, Approval(approver=decision.approver, decision=verdict, reason=decision.reason)
