"""`oncall drill NAME --stack`: a drill fired at a running `oncall up --sandbox NAME`.

The fault goes into the stack's sandbox, the alert rule is evaluated on its metrics, and
the alert is POSTed to the stack's intake exactly as Alertmanager would; the stack's warm
worker runs the playbook. This process only watches (and approves, with --auto-approve).
With `--target NS/KIND/NAME` the drill is of a team's own workload in that sandbox: a bad
release of it, then the `KubePodCrashLooping` alert for one of its crash-looping pods.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import yaml
from rich.console import Console

from oncall.alerting import label_fingerprint
from oncall.clients.kube import KubeClient
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.service_urls import services_file
from oncall.errors import PermanentError
from oncall.models import ZERO_TIME, AlertmanagerWebhook, Incident, IncidentStatus, utcnow
from oncall.settings import OncallSettings
from oncall.stack import intake_token
from oncall.store import IncidentStore
from oncall_sandbox.drill import AutoApprover, DrillResult
from oncall_sandbox.drill_catalog import plan_drill

FINAL = (IncidentStatus.RESOLVED, IncidentStatus.ESCALATED)


class RemoteSandbox:
    """The sandbox of a running stack, reached through its files and its API."""

    def __init__(self, home: Path) -> None:
        try:
            self.services: dict[str, str] = json.loads(services_file(home).read_text())
            kubeconfig = yaml.safe_load((home / "sandbox" / "kubeconfig").read_text())
        except FileNotFoundError as exc:
            raise PermanentError(
                f"no running sandbox under {home}: start `oncall up --sandbox NAME` first"
            ) from exc
        self.api_url: str = kubeconfig["clusters"][0]["cluster"]["server"]

    @property
    def prometheus_url(self) -> None:
        """None: the stack's worker reads the metrics its own deployments configure."""
        return None

    def service_url(self, namespace: str, service: str) -> str:
        """Local base URL of a Service of the running sandbox."""
        return self.services[f"{namespace}/{service}"]

    def inject_fault(self) -> dict[str, Any]:
        """Inject the stack sandbox's scenario fault; returns what was injected."""
        response = httpx.post(f"{self.api_url}/sandbox/v1/inject", timeout=120)
        if response.status_code != 200:
            raise PermanentError(f"sandbox refused the fault: {response.text}")
        result: dict[str, Any] = response.json()
        return result


def run_stack_drill(
    settings: OncallSettings,
    api_url: str,
    console: Console,
    scenario: str,
    intake_url: str,
    auto_approve: bool,
    approver: str,
    timeout_s: float = 900,
) -> DrillResult:
    """Fault the stack's sandbox, deliver the alert to its intake, follow the incident."""
    sandbox = RemoteSandbox(settings.home)
    drill = plan_drill(scenario, sandbox, settings.sandbox_time_scale, 900)  # type: ignore[arg-type]
    injected = sandbox.inject_fault()
    console.print(f"[bold red]Fault[/] in the stack's sandbox: {injected['fault']}")
    scale = settings.sandbox_time_scale
    message = drill.rule.wait_until_firing(timeout_s=max(60.0, 1200 * scale))
    incident_id = _post_alert(settings, intake_url, message)
    console.print(f"[bold red]FIRING[/] {drill.rule.name}: intake accepted incident {incident_id}")
    return _follow(settings, api_url, console, incident_id, auto_approve, approver, timeout_s)


def _post_alert(settings: OncallSettings, intake_url: str, message: AlertmanagerWebhook) -> str:
    token = intake_token(settings)
    response = httpx.post(
        f"{intake_url.rstrip('/')}/v1/alerts/alertmanager",
        content=message.model_dump_json(by_alias=True),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    if response.status_code != 202:
        raise PermanentError(f"intake answered {response.status_code}: {response.text}")
    return str(response.json()["incidents"][0])


def run_target_drill(
    settings: OncallSettings,
    api_url: str,
    console: Console,
    target: str,
    intake_url: str,
    auto_approve: bool,
    approver: str,
    timeout_s: float = 900,
) -> DrillResult:
    """A bad release of any workload of the stack's sandbox, the `KubePodCrashLooping` alert
    kube-prometheus-stack would send for one of its pods, and the routed playbook's run."""
    sandbox = RemoteSandbox(settings.home)
    try:
        namespace, kind, name = target.split("/")
    except ValueError as exc:
        raise PermanentError(f"--target {target!r}: expected NAMESPACE/KIND/NAME") from exc
    response = httpx.post(
        f"{sandbox.api_url}/sandbox/v1/faults/bad-release", json={"target": target}, timeout=30
    )
    if response.status_code != 200:
        raise PermanentError(f"sandbox refused the fault: {response.text}")
    console.print(f"[bold red]Fault[/] {target} rolls out {response.json()['image']}")
    kube = KubeClient(settings.home / "sandbox" / "kubeconfig")
    try:
        pod = _crash_looping_pod(kube, namespace, kind, name, time.monotonic() + 120)
    finally:
        kube.close()
    console.print(f"{pod} is in CrashLoopBackOff")
    labels = {
        "alertname": "KubePodCrashLooping",
        "severity": "warning",
        "namespace": namespace,
        "pod": pod,
        "job": "kube-state-metrics",
    }
    message = AlertmanagerWebhook.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="KubePodCrashLooping"}',
            "status": "firing",
            "receiver": "oncall",
            "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": labels,
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"Pod {namespace}/{pod} is crash looping."},
                    "startsAt": utcnow().isoformat(),
                    "endsAt": ZERO_TIME.isoformat(),
                    "fingerprint": label_fingerprint(labels),
                }
            ],
        }
    )
    incident_id = _post_alert(settings, intake_url, message)
    console.print(
        f"[bold red]FIRING[/] KubePodCrashLooping: intake accepted incident {incident_id}"
    )
    return _follow(settings, api_url, console, incident_id, auto_approve, approver, timeout_s)


def _crash_looping_pod(
    kube: KubeClient, namespace: str, kind: str, name: str, deadline: float
) -> str:
    workload = kube._workload(namespace, kind, name)
    selector = (workload["spec"].get("selector") or {}).get("matchLabels") or {}
    while True:
        looping = [
            p.name for p in kube.pods(namespace, selector) if p.waiting_reason == "CrashLoopBackOff"
        ]
        if looping:
            return looping[0]
        if time.monotonic() > deadline:
            raise PermanentError(f"{namespace}/{kind}/{name}: no pod crash-looped within 120 s")
        time.sleep(0.5)


def _follow(
    settings: OncallSettings,
    api_url: str,
    console: Console,
    incident_id: str,
    auto_approve: bool,
    approver: str,
    timeout_s: float,
) -> DrillResult:
    """Watch the incident's playbook run to its end (approving it with --auto-approve)."""
    prefect = PrefectApi(api_url)
    store = IncidentStore(settings.store_url)
    approving: AutoApprover | None = None
    deadline = time.monotonic() + timeout_s
    incident = _wait_for_incident(store, incident_id, deadline)
    while incident.flow_run_id is None and time.monotonic() < deadline:
        time.sleep(0.2)
        incident = store.get(incident_id)
    if incident.flow_run_id and auto_approve:
        approving = AutoApprover(prefect, UUID(incident.flow_run_id), approver, timeout_s)
        approving.start()
    console.print(f"Playbook running: {prefect.ui_url(incident.flow_run_id or '')}")
    while incident.status not in FINAL and time.monotonic() < deadline:
        if approving is not None and approving.error is not None:
            raise PermanentError(f"auto-approval failed: {approving.error}")
        time.sleep(0.5)
        incident = store.get(incident_id)
    run_id = incident.flow_run_id
    state = prefect.read_flow_run(run_id).state if run_id else None  # type: ignore[arg-type]
    while state is not None and not state.is_final() and time.monotonic() < deadline:
        time.sleep(0.5)
        state = prefect.read_flow_run(run_id).state  # type: ignore[arg-type]
    return DrillResult(
        incident=store.get(incident_id),
        flow_run_id=run_id,
        ui_url=prefect.ui_url(run_id) if run_id else None,
        final_state=f"{state.name}: {state.message or ''}" if state else "unknown",
        steps=prefect.step_timings(run_id) if run_id else [],  # type: ignore[arg-type]
    )


def _wait_for_incident(store: IncidentStore, incident_id: str, deadline: float) -> Incident:
    while True:
        try:
            return store.get(incident_id)
        except PermanentError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
