"""The human gate before a destructive step: pause the run and wait for a decision."""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run
from pydantic import ValidationError

from oncall.approval import UI_CHANNEL, ApprovalDecision, approval_key, verified_channel
from oncall.clients.notify import Notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Approval, Incident
from oncall.settings import OncallSettings

VERIFIED_ELSEWHERE = (
    "Decide from Slack, or with `oncall approve RUN_ID` and your approver token "
    "(`oncall approvers add NAME`)."
)


def await_approval(
    prefect: PrefectApi,
    description: str,
    timeout_s: int,
    poll_s: int,
    notifier: Notifier | None = None,
    incident: Incident | None = None,
    verified_required: bool = False,
) -> tuple[ApprovalDecision | None, Approval]:
    """Pause the flow run until a human approves or rejects in the UI (or Slack, or the CLI).

    With a notifier, the request (plan, Approve / Reject) goes to Slack before the pause
    and the decision after it. On timeout nothing is approved: the caller changes nothing
    and escalates. With ``verified_required`` a decision typed into the Prefect UI is
    refused and the run keeps waiting for a verified one.
    """
    if notifier is not None and incident is not None:
        notifier.approval_requested(incident, str(flow_run.get_id() or ""), description)
    decision, approval = _pause(prefect, description, timeout_s, poll_s, verified_required)
    if notifier is not None and incident is not None:
        notifier.approval_decided(incident, approval)
    return decision, approval


def _pause(
    prefect: PrefectApi, description: str, timeout_s: int, poll_s: int, verified_required: bool
) -> tuple[ApprovalDecision | None, Approval]:
    log = get_run_logger()
    run_id = str(flow_run.get_id() or "")
    key = approval_key(OncallSettings())
    deadline = time.monotonic() + timeout_s
    refused = ""
    if verified_required:
        description += f"\n\n**Only a verified approver may decide.** {VERIFIED_ELSEWHERE}"
    while (remaining := int(deadline - time.monotonic())) > 0:
        log.info("Waiting up to %ds for an approval: %s", remaining, prefect.ui_url(run_id))
        try:
            decision = pause_flow_run(
                wait_for_input=ApprovalDecision.with_initial_data(
                    description=refused + description,
                    approve=False,
                    approver="",
                    reason="",
                    attestation="",
                ),
                timeout=remaining,
                poll_interval=poll_s,
            )
        except FlowPauseTimeout:
            break
        except ValidationError as exc:  # e.g. a blank approver: no one decided
            problem = "; ".join(e["msg"] for e in exc.errors())
            log.warning("Refused a resume that is not a decision (%s); still waiting", problem)
            refused = f"**Refused:** a resume without a valid decision ({problem}).\n\n"
            continue
        channel = verified_channel(key, run_id, decision)
        verdict = "approved" if decision.approve else "rejected"
        if channel is None and verified_required:
            log.warning(
                "Refused an unverified decision (%s %s in the Prefect UI): only a verified "
                "approver may decide this; still waiting",
                decision.approver,
                verdict,
            )
            refused = (
                f"**Refused:** {decision.approver!r} {verdict} in the Prefect UI, unverified. "
                f"{VERIFIED_ELSEWHERE}\n\n"
            )
            continue
        how = channel or f"{UI_CHANNEL}, name as typed (unverified)"
        log.info(
            "%s %s the mitigation via %s: %s",
            decision.approver,
            verdict,
            how,
            decision.reason or "-",
        )
        return decision, Approval(
            approver=decision.approver,
            decision=verdict,
            reason=decision.reason,
            channel=channel or UI_CHANNEL,
            verified=channel is not None,
        )
    # Prefect leaves the run Paused after its own timeout; move it back to Running so the
    # playbook can escalate and finish with a state that says what happened.
    if run_id:
        prefect.force_running(run_id)  # type: ignore[arg-type]
    log.warning("No decision within %ds: nothing will be changed", timeout_s)
    return None, Approval(
        approver="(nobody)", decision="timed_out", reason=f"no decision within {timeout_s}s"
    )
