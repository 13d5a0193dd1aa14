"""The steps every playbook shares, so each flow file reads like its seed section.

A `PlaybookRun` holds the clients, the guard and the incident of one flow run; its methods
call the task library, and each ends the run with a state the UI shows by name.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, ParamSpec

from prefect import Flow, flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from flows.naming import incident_run_name
from oncall.approval import ApprovalDecision
from oncall.clients import Clients, KubeClient
from oncall.errors import UnsafeToRemediate
from oncall.guards import Guard
from oncall.models import Action, ActionKind, Alert, Incident, IncidentStatus
from oncall.observations import ChangePlan, ProbeResult, Verification
from oncall.playbooks import PlaybookConfig, sla_ladder
from oncall.settings import OncallSettings
from tasks.approval import await_approval
from tasks.dependencies import probe_http, probe_postgres, probe_redis
from tasks.escalation import cancel_escalations, schedule_escalations
from tasks.incident import (
    acknowledge,
    acknowledge_by_human,
    escalate,
    label_incident_run,
    mark_mitigated,
    open_incident,
    record_action,
    record_approval,
    resolve,
)
from tasks.mitigations import apply_plan
from tasks.postmortem import preserve_workload_evidence, start_post_incident

P = ParamSpec("P")


class PlaybookRun:
    """One playbook working one incident."""

    def __init__(self, playbook: str, alert: Alert, config: PlaybookConfig) -> None:
        self.playbook, self.config = playbook, config
        self.clients = Clients(OncallSettings())
        self.settings = self.clients.settings
        self.store, self.notifier = self.clients.store, self.clients.notifier
        self.guard = Guard(config.guard, self.store, self.clients.prefect)
        self.incident: Incident = open_incident(self.store, alert, playbook)
        _current_run.set(self)
        label_incident_run(self.clients.prefect, self.incident)
        self.notifier.opened(self.incident)
        ladder = config.escalation
        if ladder is None:
            ladder = sla_ladder(self.incident.severity)
        schedule_escalations(
            self.clients.prefect, self.incident, ladder, config.escalation_time_scale
        )

    @property
    def kube(self) -> KubeClient:
        """The cluster, connected on first use: an incident is opened even without one."""
        return self.clients.kube

    def acknowledge(self) -> None:
        """Seed step 1: acknowledge the alert."""
        self.incident = acknowledge(self.store, self.notifier, self.incident)

    def record(self, action: Action) -> None:
        """Keep evidence or an action on the incident."""
        self.incident = record_action(self.store, self.incident, action)
        verb = "planned (dry run)" if action.dry_run else "done"
        self.notifier.step(
            self.incident, f"{action.kind} `{action.target}` {verb}", action.model_dump(mode="json")
        )

    def diagnose(self, findings: str, probes: Sequence[ProbeResult], **evidence: Any) -> None:
        """Keep the diagnosis: what it concludes, the dependency probes, the evidence read."""
        detail = {**evidence, "probes": [p.model_dump() for p in probes], "findings": findings}
        self.record(Action(kind="diagnosis", target=self.config.namespace, detail=detail))

    def probe_dependencies(self, http: dict[str, str] | None = None) -> list[Any]:
        """Submit the dependency probes concurrently: PostgreSQL, Redis, HTTP health URLs."""
        timeout = self.settings.probe_timeout_s
        urls = {**self.config.dependency_urls, **(http or {})}
        return [
            probe_postgres.submit(self.settings.postgres_dsn, timeout),
            probe_redis.submit(self.settings.redis_url, timeout),
            *(probe_http.submit(name, url, timeout) for name, url in urls.items()),
        ]

    def approval(self, kind: ActionKind, text: str) -> tuple[bool, ApprovalDecision | None]:
        """Pause for a human when the guard policy asks for one; (approved?, decision)."""
        if not self.config.guard.needs_approval(kind):
            return True, None
        decision, approval = await_approval(
            self.clients.prefect,
            text,
            self.config.approval_timeout_s,
            self.config.approval_poll_s,
            self.notifier,
            self.incident,
            verified_required=self.config.guard.needs_verified_approver(
                kind, self.incident.severity
            ),
        )
        self.incident = record_approval(self.store, self.incident, approval)
        if decision is not None:
            # A person has answered: they have the incident; the timers stop.
            self.incident = acknowledge_by_human(self.store, self.incident, decision.approver)
            cancel_escalations(self.clients.prefect, self.incident.id, "acknowledged")
        return bool(decision and decision.approve), decision

    def approval_text(self, findings: str, plan: str) -> str:
        """The approval form's description: incident, findings, dry-run plan."""
        inc = self.incident
        return (
            f"### {inc.title}\n\n"
            f"**Incident** `{inc.id}` · severity {inc.severity} ({inc.severity.label}, "
            f"respond within {inc.severity.response_target})\n\n"
            f"**Findings:** {findings}\n\n**Proposed (dry-run plan):** {plan}\n\n"
            "Tick *approve* and give your name to go ahead; leave it unticked to reject "
            "(the incident escalates and nothing changes)."
        )

    def mitigate(self, plan: ChangePlan, findings: str) -> Action | State[Any]:
        """Approve (if required) and apply one planned mitigation; a refusal escalates."""
        self.record(
            Action(
                kind=f"{plan.kind}-planned",
                target=plan.target,
                detail=plan.model_dump(),
                dry_run=True,
            )
        )
        approved, decision = self.approval(plan.kind, self.approval_text(findings, plan.describe()))
        if not approved:
            verdict = self.incident.approvals[-1].decision
            return self.escalate(f"{plan.kind} {verdict}: nothing changed")
        # The mitigation replaces pods, and their logs go with them: keep them first.
        preserve_workload_evidence(self.kube, self.incident, self.settings.home)
        try:
            action = apply_plan(self.kube, self.guard, self.incident, plan, decision)
        except UnsafeToRemediate as exc:
            return self.escalate(f"{plan.kind} refused by a guard: {exc}")
        self.record(action)
        if action.dry_run:
            return Completed(name="DryRun", message=plan.describe())
        self.incident = mark_mitigated(self.store, self.incident, plan.describe())
        return action

    def escalate(self, reason: str) -> State[Any]:
        """Hand over to a human; the run ends as Escalated."""
        try:
            primary = self.clients.contacts_for("primary")  # seed: 0-5 min, primary on-call
        except Exception:  # an unreadable rotation never blocks an escalation
            primary = []
        self.incident = escalate(self.store, self.notifier, self.incident, reason, primary)
        return Failed(name="Escalated", message=reason)

    def finish(self, verification: Verification, undo: ChangePlan | None = None) -> State[Any]:
        """Resolve on a passed verification; else escalate and offer to undo the mitigation."""
        if verification.passed:
            self.incident = resolve(self.store, self.notifier, self.incident, verification.detail)
            cancel_escalations(self.clients.prefect, self.incident.id, "resolved")
            start_post_incident(self.clients.prefect, self.incident)
            return Completed(name="Resolved", message=verification.detail)
        state = self.escalate(f"mitigation did not clear the alert: {verification.detail}")
        if undo is not None:
            self.offer_undo(undo)
        return state

    def offer_undo(self, undo: ChangePlan) -> None:
        """After a failed verification, offer (with approval) to revert our own change."""
        text = self.approval_text(
            "the mitigation did not clear the alert", f"UNDO: {undo.describe()}"
        )
        decision, approval = await_approval(
            self.clients.prefect,
            text,
            self.config.approval_timeout_s,
            self.config.approval_poll_s,
            self.notifier,
            self.incident,
            # Undoing our own change is a rollback of what we did.
            verified_required=self.config.guard.needs_verified_approver(
                ActionKind.ROLLBACK, self.incident.severity
            ),
        )
        self.incident = record_approval(self.store, self.incident, approval)
        if decision and decision.approve:
            try:
                self.record(apply_plan(self.kube, self.guard, self.incident, undo, decision))
            except UnsafeToRemediate as exc:
                self.notifier.step(self.incident, f"undo refused by a guard: {exc}")


# The PlaybookRun of the flow running in this context, once its incident is open.
_current_run: ContextVar[PlaybookRun | None] = ContextVar("playbook_run", default=None)


def playbook_flow(name: str) -> Callable[[Callable[P, State[Any]]], Flow[P, State[Any]]]:
    """A playbook's flow: its runs are named after the incident, and a stop escalates.

    A playbook that stops on an error (the cluster unreachable, a bug) must not leave its
    incident to wait for the first escalation timer: it hands the incident to a human at
    once, with the error as the reason, and the run ends as Escalated.
    """

    def decorate(fn: Callable[P, State[Any]]) -> Flow[P, State[Any]]:
        @functools.wraps(fn)
        def run_playbook(*args: P.args, **kwargs: P.kwargs) -> State[Any]:
            token = _current_run.set(None)
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                run = _current_run.get()
                if run is None or run.incident.status in {
                    IncidentStatus.RESOLVED,
                    IncidentStatus.ESCALATED,
                }:
                    raise
                get_run_logger().exception("%s stopped before it finished", name)
                return run.escalate(f"the playbook stopped before it finished: {exc}")
            finally:
                _current_run.reset(token)

        # Prefect validates parameters against the annotations of the function it is given;
        # this module's namespace cannot resolve the playbook's (string) annotations.
        run_playbook.__annotations__ = typing.get_type_hints(fn)
        run_playbook.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        return flow(name=name, flow_run_name=incident_run_name, log_prints=True)(run_playbook)

    return decorate
