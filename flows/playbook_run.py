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
from oncall.catalog import SecretRef, ServiceEntry
from oncall.clients.kube import KubeClient
from oncall.errors import AutomationPaused, OncallError, UnsafeToRemediate
from oncall.guards import Guard, GuardPolicy
from oncall.models import Action, ActionKind, Alert, Incident, IncidentStatus, Severity
from oncall.observations import ChangePlan, ProbeResult, Verification
from oncall.playbooks import PlaybookConfig, ladder_for
from oncall.settings import OncallSettings
from oncall.subjects import Subject, SubjectUnresolved
from oncall.wiring import Clients
from tasks.approval import await_approval
from tasks.dependencies import probe_http, probe_postgres, probe_redis
from tasks.escalation import schedule_escalations
from tasks.incident import (
    acknowledge,
    acknowledge_by_human,
    escalate,
    label_incident_run,
    mark_mitigated,
    open_incident,
    record_action,
    record_approval,
    record_subject,
    resolve,
    tag_subject,
)
from tasks.mitigations import apply_plan
from tasks.postmortem import preserve_workload_evidence, start_post_incident
from tasks.subjects import resolve_subject, subject_config_maps
from tasks.verify import wait_for_alert_to_clear

P = ParamSpec("P")


class PlaybookRun:
    """One playbook working one incident."""

    def __init__(
        self, playbook: str, alert: Alert, config: PlaybookConfig, subject_first: bool = False
    ) -> None:
        """Open the incident and start its timers; with ``subject_first``, resolve the
        alert's subject before announcing it (its service's channel and people)."""
        self.playbook, self.config = playbook, config
        self.clients = Clients(OncallSettings())
        self.settings = self.clients.settings
        self.store, self.notifier = self.clients.store, self.clients.notifier
        self.guard = Guard(config.guard, self.store, self.clients.prefect)
        self.incident: Incident = open_incident(self.store, alert, playbook)
        # Set by work_subject(): what the alert is about, its catalog entry, and why (if so)
        # nothing of it may be changed.
        self.subject: Subject | None = None
        self.entry: ServiceEntry | None = None
        self.read_only: str | None = None
        _current_run.set(self)
        label_incident_run(self.clients.prefect, self.incident)
        try:
            if subject_first:
                self.work_subject()
        finally:  # announced (and paged) even when the cluster cannot be read
            self.notifier.opened(self.incident)
        ladder = ladder_for(config.escalation, self.incident.severity)
        business_hours = None
        if self.incident.severity is Severity.P3:  # seed: "investigate during business hours"
            try:
                business_hours = self.clients.business_hours(self.incident)
            except OncallError as exc:  # an unreadable rotation: the timers still run
                get_run_logger().warning("P3 timers at any hour: %s", exc)
        schedule_escalations(
            self.clients.prefect,
            self.incident,
            ladder,
            config.escalation_time_scale,
            business_hours,
        )

    @property
    def kube(self) -> KubeClient:
        """The cluster, connected on first use: an incident is opened even without one."""
        return self.clients.kube

    def acknowledge(self) -> None:
        """Seed step 1: acknowledge the alert."""
        self.incident = acknowledge(self.store, self.notifier, self.incident)

    def work_subject(self) -> Subject | None:
        """Resolve what the alert is about; from here the guard lets only it be changed.

        The subject's catalog entry gives the guard policy (the playbook's own `guard`
        parameters, where given, override it) and the workloads it may change. A subject in
        no entry, outside the allowed namespaces or not a workload may only be read: the
        reason is kept in `read_only`. None when the alert's subject cannot be resolved
        (labels missing, object gone): the playbook then does the default triage.
        """
        alert = self.incident.alert
        try:
            subject = resolve_subject(self.kube, alert.labels, self.config.relabel)
        except SubjectUnresolved as exc:
            self.record(
                Action(
                    kind="subject-unresolved",
                    target=alert.labels.get("namespace", "") or alert.service,
                    detail={"reason": str(exc), "labels": alert.labels},
                )
            )
            self.read_only = f"the alert's subject could not be resolved: {exc}"
            return None
        self.entry = self.clients.catalog.owner_of(subject, alert.labels)
        subject = subject.model_copy(
            update={"catalog_service": self.entry.name if self.entry else None}
        )
        self.subject = subject
        self.incident = record_subject(self.store, self.incident, subject)
        tag_subject(self.clients.prefect, subject)
        self.notifier.step(self.incident, f"subject: {subject.describe()}")
        policy = self._subject_policy(subject)
        self.guard = Guard(policy, self.store, self.clients.prefect)
        if self.entry is not None:
            self.guard.also_known_as = (self.entry.name,)
        get_run_logger().info(
            "%s: %s", subject.ref, self.read_only or f"may change {policy.allowed_targets}"
        )
        return subject

    def _subject_policy(self, subject: Subject) -> GuardPolicy:
        base = self.entry.policy() if self.entry else GuardPolicy()
        given = self.config.guard  # what the deployment's own parameters say wins
        base = base.model_copy(update={k: getattr(given, k) for k in given.model_fields_set})
        if self.entry is None:
            self.read_only = f"{subject.ref} is in no service of the catalog"
        elif subject.namespace not in base.allowed_namespaces:
            self.read_only = (
                f"{subject.ref} is outside the allowed namespaces {base.allowed_namespaces}"
            )
        elif not subject.is_workload:
            self.read_only = f"{subject.ref} is not a workload a playbook may change"
        allowed: set[str] = set()
        if self.read_only is None and self.entry is not None:
            ns = subject.namespace
            maps = [*subject_config_maps(self.kube, subject), *self.entry.known_good]
            allowed = self.entry.may_change(subject) | {f"{ns}/configmap/{m}" for m in maps}
            if subject.service:
                allowed.add(f"{ns}/service/{subject.service}")
        return base.model_copy(update={"allowed_targets": sorted(allowed)})

    def default_triage(self) -> State[Any]:
        """CRONOS "General Alert Response Flow": a human takes it, with the reason."""
        alert = self.incident.alert
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        return self.escalate(
            f"default triage: {self.read_only}; severity {self.incident.severity}: "
            f"{summary or 'no summary'} ({alert.generator_url or 'no source link'})"
        )

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
        target = self.subject.ref if self.subject else self.config.namespace
        self.record(Action(kind="diagnosis", target=target, detail=detail))

    def probe_dependencies(self, http: dict[str, str] | None = None) -> list[Any]:
        """Submit the dependency probes concurrently: PostgreSQL, Redis, HTTP health URLs."""
        timeout = self.settings.probe_timeout_s
        urls = {**self.config.dependency_urls, **(http or {})}
        if self.entry is not None and self.entry.dependencies:
            return self._probe_entry_dependencies(urls, timeout)
        return [
            probe_postgres.submit(self.settings.postgres_dsn, timeout),
            probe_redis.submit(self.settings.redis_url, timeout),
            *(probe_http.submit(name, url, timeout) for name, url in urls.items()),
        ]

    def _probe_entry_dependencies(self, urls: dict[str, str], timeout: float) -> list[Any]:
        """The subject's own dependencies, from its catalog entry; a reference that does not
        resolve is reported as not probed (never as down, never by its value)."""
        assert self.entry is not None
        probing: list[Any] = []
        for dep in self.entry.dependencies:
            if dep.kind == "http":
                urls.setdefault(dep.name, dep.url or "")
                continue
            ref = dep.dsn
            address = self._resolve(ref) if ref is not None else None
            if address is None:
                where = ref.describe() if ref is not None else "no address"
                probing.append(_NotProbed(dep.name, f"not probed: {where} does not resolve"))
            elif dep.kind == "postgres":
                probing.append(probe_postgres.submit(address, timeout))
            else:
                probing.append(probe_redis.submit(address, timeout))
        probing += [probe_http.submit(name, url, timeout) for name, url in urls.items()]
        return probing

    def _resolve(self, ref: SecretRef) -> str | None:
        """A reference's value: its environment variable (one of the worker's own `ONCALL_`
        settings falls back to that setting's value), or its Kubernetes Secret's key."""
        if ref.env:
            value = ref.from_env()
            field = ref.env.removeprefix("ONCALL_").lower()
            if (
                value is None
                and ref.env.startswith("ONCALL_")
                and field in OncallSettings.model_fields
            ):
                setting = getattr(self.settings, field)
                value = setting if isinstance(setting, str) else None
            return value
        try:
            return self.kube.secret_value(
                ref.namespace or (self.subject.namespace if self.subject else "default"),
                ref.secret or "",
                ref.key or "",
            )
        except OncallError:
            return None

    def approval(self, kind: ActionKind, text: str) -> tuple[bool, ApprovalDecision | None]:
        """Pause for a human when the guard policy asks for one; (approved?, decision)."""
        if not self.guard.policy.needs_approval(kind):
            return True, None
        decision, approval = await_approval(
            self.clients.prefect,
            text,
            self.config.approval_timeout_s,
            self.config.approval_poll_s,
            self.notifier,
            self.incident,
            verified_required=self.guard.policy.needs_verified_approver(
                kind, self.incident.severity
            ),
        )
        self.incident = record_approval(self.store, self.incident, approval)
        if decision is not None:
            # A person has answered: they have the incident; the timers stop.
            self.incident = acknowledge_by_human(
                self.store, self.clients.prefect, self.notifier, self.incident, decision.approver
            )
        return bool(decision and decision.approve), decision

    def approval_text(self, findings: str, plan: str) -> str:
        """The approval form's description: incident, findings, dry-run plan."""
        inc = self.incident
        subject = f"**Subject:** {inc.subject.describe()}\n\n" if inc.subject else ""
        return (
            f"### {inc.title}\n\n"
            f"**Incident** `{inc.id}` · severity {inc.severity} ({inc.severity.label}, "
            f"respond within {inc.severity.response_target})\n\n{subject}"
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
        try:  # no approval is asked for a change that may not be made
            self.guard.check_pause(self.incident.service)
        except AutomationPaused as exc:
            return self.escalate(f"{plan.kind} {exc}")
        approved, decision = self.approval(plan.kind, self.approval_text(findings, plan.describe()))
        if not approved:
            verdict = self.incident.approvals[-1].decision
            return self.escalate(f"{plan.kind} {verdict}: nothing changed")
        # The mitigation replaces pods, and their logs go with them: keep them first.
        preserve_workload_evidence(self.kube, self.incident, self.settings.home)
        try:
            action = apply_plan(self.kube, self.guard, self.incident, plan, decision)
        except AutomationPaused as exc:  # paused while the approval was pending
            return self.escalate(f"{plan.kind} {exc}")
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
            # Seed: 0-5 min, the primary on-call of the incident's service, and the experts
            # of the alert's area (database, LLM, vector DB, Kubernetes).
            primary = self.clients.contacts_for("primary", self.incident)
            experts = self.clients.experts_for(self.incident)
        except Exception:  # an unreadable rotation never blocks an escalation
            primary, experts = [], []
        contacts = list(dict.fromkeys(primary + experts))
        self.incident = escalate(self.store, self.notifier, self.incident, reason, contacts)
        return Failed(name="Escalated", message=reason)

    def finish(self, verification: Verification, undo: ChangePlan | None = None) -> State[Any]:
        """Resolve on a passed verification; else escalate and offer to undo the mitigation."""
        # Every measurement (value, verdict, time) and every query is kept as evidence.
        target = self.subject.ref if self.subject else self.config.namespace
        self.incident = record_action(
            self.store,
            self.incident,
            Action(kind="verification", target=target, detail=verification.model_dump(mode="json")),
        )
        if verification.passed:
            clearance = wait_for_alert_to_clear(
                self.config.alertmanager_url,
                {"alertname": self.incident.alert.name, **self.incident.alert.labels},
                self.config.alert_clear_timeout_s,
                self.config.alert_clear_interval_s,
            )
            self.incident = record_action(
                self.store,
                self.incident,
                Action(
                    kind="alert-clearance", target=target, detail=clearance.model_dump(mode="json")
                ),
            )
            if clearance.checked and not clearance.cleared:
                # The metrics say healthy: a person decides, no undo is offered.
                return self.escalate(f"the metrics verified, but {clearance.detail}")
        if verification.passed:
            self.incident = resolve(
                self.store, self.clients.prefect, self.notifier, self.incident, verification.detail
            )
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
            verified_required=self.guard.policy.needs_verified_approver(
                ActionKind.ROLLBACK, self.incident.severity
            ),
        )
        self.incident = record_approval(self.store, self.incident, approval)
        if decision and decision.approve:
            try:
                self.record(apply_plan(self.kube, self.guard, self.incident, undo, decision))
            except UnsafeToRemediate as exc:
                self.notifier.step(self.incident, f"undo refused by a guard: {exc}")


class _NotProbed:
    """A dependency whose address did not resolve: it answers like a submitted probe."""

    def __init__(self, name: str, detail: str) -> None:
        self._result = ProbeResult(
            name=name, target="-", ok=True, probed=False, latency_ms=0, detail=detail
        )

    def result(self) -> ProbeResult:
        """The probe's (non-)result."""
        return self._result


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
