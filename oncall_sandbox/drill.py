"""Drills: a fault injected into the sandbox, its alert firing, its playbook run end to end."""

from __future__ import annotations

import getpass
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.console import Console
from rich.table import Table

from flows.naming import incident_run_name_for
from flows.postmortem import post_incident
from oncall.alerting import ErrorRateRule, Rule, alerts_of
from oncall.approval import approval_key
from oncall.clients.prefect_api import PrefectApi, StepTiming
from oncall.errors import OncallError
from oncall.models import Action, Alert, Incident, IncidentStatus
from oncall.observations import ChangePlan, Verification
from oncall.playbooks import HighApiErrorRateConfig, PlaybookConfig
from oncall.prefect_server import PrefectServer
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import SCENARIOS, Sandbox
from oncall_sandbox.drill_catalog import plan_drill


@dataclass
class DrillResult:
    """What a drill ended with: the incident as recorded and the run that worked it."""

    incident: Incident
    flow_run_id: str | None
    ui_url: str | None
    final_state: str
    steps: list[StepTiming] = field(default_factory=list)
    postmortem: str | None = None

    @property
    def resolved(self) -> bool:
        """True only when the playbook verified the incident resolved."""
        return self.incident.status == IncidentStatus.RESOLVED


class AutoApprover(threading.Thread):
    """Approves the drill's paused run through Prefect's resume API, as a named approver."""

    def __init__(self, prefect: PrefectApi, run_name: str | UUID, approver: str, timeout_s: float):
        super().__init__(name="auto-approver", daemon=True)
        self.prefect, self.run_name = prefect, run_name
        self.approver, self.timeout_s = approver, timeout_s
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            paused = self.prefect.wait_for_pause(self.run_name, self.timeout_s)
            # The drill holds the approval key of its home: a verified decision, so that a
            # stack whose playbooks require one (`oncall drill --stack`) takes it too.
            self.prefect.decide(
                paused.id,
                approval_key(OncallSettings()),
                approve=True,
                approver=self.approver,
                reason="drill: auto-approved",
                channel="drill",
            )
        except Exception as exc:  # reported by the drill, never swallowed
            self.error = exc


class PauseAnnouncer(threading.Thread):
    """Tells the operator where to approve once the run pauses."""

    def __init__(self, prefect: PrefectApi, run_name: str, console: Console, timeout_s: float):
        super().__init__(name="pause-announcer", daemon=True)
        self.prefect, self.run_name = prefect, run_name
        self.console, self.timeout_s = console, timeout_s

    def run(self) -> None:
        try:
            paused = self.prefect.wait_for_pause(self.run_name, self.timeout_s)
        except OncallError:
            return
        self.console.print(
            f"\n[bold yellow]Waiting for approval.[/] Open {self.prefect.ui_url(paused.id)} , "
            "press Resume, tick approve and give your name; or run "
            f"[bold]oncall approve {paused.id} --approver YOUR_NAME[/]\n"
        )


def drill_config(sandbox: Sandbox, scale: float, approval_timeout_s: int) -> HighApiErrorRateConfig:
    """The HighApiErrorRate playbook's configuration for the sandbox, time-compressed."""
    config = plan_drill("bad-deploy", sandbox, scale, approval_timeout_s).config
    assert isinstance(config, HighApiErrorRateConfig)
    return config


def high_api_error_rate_rule(scale: float) -> Rule:
    """The seed's alert: API 5xx error rate > 5 % for 2+ minutes (time-scaled)."""
    return ErrorRateRule(
        name="HighApiErrorRate",
        threshold=0.05,
        for_s=120 * scale,
        interval_s=max(0.3, 15 * scale),
        labels={"severity": "critical", "service": "gremlinsai-backend", "namespace": "gremlinsai"},
        annotations={
            "summary": "API 5xx error rate above 5%",
            "runbook": "GremlinsAI playbook: Critical Alert: HighApiErrorRate",
        },
    )


def run_drill(
    settings: OncallSettings,
    server: PrefectServer,
    console: Console,
    scenario: str = "bad-deploy",
    auto_approve: bool = False,
    approver: str | None = None,
    approval_timeout_s: int = 900,
) -> DrillResult:
    """Run one drill: sandbox up, fault in, alert fires, the playbook runs, result returned."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    scale = settings.sandbox_time_scale
    prefect = PrefectApi(server.api_url)
    with Sandbox(home=settings.home, time_scale=scale, scenario=scenario) as sandbox:
        console.print(
            f"[bold]Sandbox cluster[/] up at {sandbox.api_url} "
            f"(kubeconfig {sandbox.kubeconfig_path}, 1 s = {1 / scale:.0f} s simulated)"
        )
        drill = plan_drill(scenario, sandbox, scale, approval_timeout_s)
        spec = drill.scenario
        console.print(f"Seed: {spec.seed_section}")
        console.print(f"[bold red]Fault:[/] {spec.fault}")
        sandbox.inject_fault()
        rule = drill.rule
        console.print(
            f"Evaluating {rule.name}: {spec.alert.expr} for {spec.alert.for_seconds:.0f}s"
        )
        message = rule.wait_until_firing(
            timeout_s=max(60.0, 1200 * scale),
            on_sample=lambda value, held: console.print(
                f"  {spec.alert.metric} = {'n/a' if value is None else f'{value:.4g}'}"
                + (f"  pending {held / scale:5.0f}s (sim)" if held else "")
            ),
        )
        alert = alerts_of(message)[0]
        console.print(f"[bold red]FIRING[/] {alert.name} fingerprint {alert.fingerprint}")
        return _run_playbook(
            settings,
            prefect,
            console,
            alert,
            drill.config,
            auto_approve,
            approver or f"{getpass.getuser()} (drill auto-approve)",
            drill.playbook,
        )


def _run_playbook(
    settings: OncallSettings,
    prefect: PrefectApi,
    console: Console,
    alert: Alert,
    config: PlaybookConfig,
    auto_approve: bool,
    approver: str,
    playbook: Any,
) -> DrillResult:
    run_name = incident_run_name_for(alert)
    watcher: threading.Thread
    if auto_approve:
        watcher = AutoApprover(prefect, run_name, approver, config.approval_timeout_s + 60)
    else:
        watcher = PauseAnnouncer(prefect, run_name, console, config.approval_timeout_s + 60)
    watcher.start()
    with temporary_settings(updates={PREFECT_API_URL: prefect.api_url}):
        state = playbook(alert=alert, config=config, return_state=True)
    if isinstance(watcher, AutoApprover) and watcher.error:
        console.print(f"[red]Auto-approval failed:[/] {watcher.error}")
    store = IncidentStore(settings.store_url)
    incident = store.get(Incident.id_for(alert))
    postmortem = None
    if incident.status == IncidentStatus.RESOLVED:
        # A drill is self-contained: draft the postmortem here rather than wait for a worker.
        with temporary_settings(updates={PREFECT_API_URL: prefect.api_url}):
            pm_state = post_incident(incident_id=incident.id, return_state=True)
        if pm_state.is_completed():
            postmortem = str(pm_state.result())
    run_id = incident.flow_run_id
    return DrillResult(
        incident=incident,
        flow_run_id=run_id,
        ui_url=prefect.ui_url(run_id) if run_id else None,
        final_state=f"{state.name}: {state.message or ''}".strip(": "),
        steps=prefect.step_timings(run_id) if run_id else [],  # type: ignore[arg-type]
        postmortem=postmortem,
    )


def render_summary(result: DrillResult, console: Console) -> None:
    """Print what was found, what was done, how long each step took, and where to look."""
    inc = result.incident
    console.rule(f"[bold]{inc.title}")
    console.print(
        f"Incident [bold]{inc.id}[/]  severity {inc.severity}  status "
        f"[bold {'green' if result.resolved else 'red'}]{inc.status.value}[/]"
    )
    console.print(f"Flow run final state: {result.final_state}")
    timeline = Table("time (UTC)", "status", "note", title="Timeline")
    for t in inc.transitions:
        timeline.add_row(_clock(t.at), t.status.value, t.note)
    console.print(timeline)
    if inc.approvals:
        for a in inc.approvals:
            console.print(
                f"Approval: [bold]{a.decision}[/] by {a.approver} at {_clock(a.at)}"
                f" ({a.reason or 'no reason given'})"
            )
    for action in inc.actions:
        console.print(f"Action: {describe_action(action)}")
    steps = Table("step", "state", "seconds", title="Steps (Prefect task runs)")
    for step in result.steps:
        steps.add_row(step.name, step.state, f"{step.seconds:.2f}")
    console.print(steps)
    if result.ui_url:
        console.print(f"Prefect UI: {result.ui_url}")
    if result.postmortem:
        console.print(f"Postmortem draft: {result.postmortem}")


def describe_action(action: Action) -> str:
    """One line for an incident action, as the summary and the CLI print it."""
    detail = action.detail
    if action.kind == "diagnosis" and "findings" in detail:
        return f"diagnosis: {detail['findings']}"
    if action.kind == "diagnosis":
        down = [p["name"] for p in detail.get("probes", []) if not p["ok"]]
        change = detail.get("change")
        suspect = (
            f"suspect {change['deployment']} rev {change['revision']} "
            f"({', '.join(change['images'])})"
            if change
            else "no suspect rollout"
        )
        return f"diagnosis: dependencies down: {', '.join(down) or 'none'}; {suspect}"
    if action.kind == "rollout":
        state = "complete" if detail["complete"] else "NOT complete"
        return (
            f"rollout of {action.target}: now revision {detail['revision']} "
            f"({', '.join(detail['images'])}), {state}"
        )
    if action.kind == "verification":
        return Verification.model_validate(detail).describe()
    if "before" in detail and "after" in detail:
        return ChangePlan.model_validate(detail).describe() + (
            " (planned)" if action.dry_run else " (applied)"
        )
    return f"{action.kind} {action.target}"


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S.%f")[:-3]
