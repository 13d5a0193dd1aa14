"""The crash-loop playbook on whatever workload the alert names, not only the seeds'.

A team's own Deployment or StatefulSet is created at test time in a fresh namespace of a
sandbox whose CRONOS service is crash-looping too (the seed's fault): a playbook that works
the wrong subject would change CRONOS. With no catalog entry the subject is only read; with
an entry and an earlier good revision the fix is a rollback of that workload.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from flows.naming import incident_run_name_for
from flows.pod_crash_loop import pod_crash_loop
from oncall.clients.kube import KubeClient
from oncall.models import Action, Alert, Incident, IncidentStatus, utcnow
from oncall.playbooks import PodCrashLoopConfig
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall_sandbox import Sandbox
from oncall_sandbox.faults import bad_release
from tests.playbooks.conftest import SCALE, Human

NS = "payments"
MUTATIONS = {"config", "restart", "rollback", "scale", "set_env", "switch", "fallback"}


@dataclass
class Cluster:
    """A sandbox with the CRONOS crash loop injected, and clients to build a team's workloads."""

    sandbox: Sandbox
    kube: KubeClient
    apps: client.AppsV1Api
    core: client.CoreV1Api

    def cronos_state(self) -> tuple[int, dict[str, str]]:
        """What a playbook working the wrong subject would change: revision and ConfigMap."""
        return (
            self.kube.health("cronos-ai", "cronos-ai").revision,
            self.kube.config_map("cronos-ai", "cronos-ai-config"),
        )

    def workload(self, kind: str, name: str, image: str, replicas: int = 2) -> None:
        """Create a namespace and a Deployment or StatefulSet with a Service, as a team would."""
        try:
            self.core.create_namespace({"metadata": {"name": NS}})
        except client.ApiException as exc:
            assert exc.status == 409
        labels = {"app": name}
        template = {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": name, "image": image}]},
        }
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template,
        }
        body = {"metadata": {"name": name, "namespace": NS}, "spec": spec}
        if kind == "deployment":
            self.apps.create_namespaced_deployment(NS, body)
        else:
            self.apps.create_namespaced_stateful_set(
                NS, {**body, "spec": {**spec, "serviceName": name}}
            )
        self.core.create_namespaced_service(
            NS,
            {
                "metadata": {"name": name},
                "spec": {"selector": labels, "ports": [{"port": 8080}]},
            },
        )
        self.wait(lambda: self.kube.workload_ready(NS, kind, name), f"{kind}/{name} ready")

    def crash_looping_pod(self, name: str) -> str:
        """The name of one of the workload's pods once it waits in CrashLoopBackOff."""
        found: list[str] = []

        def looping() -> bool:
            found[:] = [
                p.name
                for p in self.kube.pods(NS, {"app": name})
                if p.waiting_reason == "CrashLoopBackOff"
            ]
            return bool(found)

        self.wait(looping, f"{name} crash-looping")
        return found[0]

    @staticmethod
    def wait(condition: Any, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)


@pytest.fixture
def cluster(oncall_home: Path, prefect_api: str) -> Iterator[Cluster]:
    with Sandbox(home=oncall_home, time_scale=SCALE, scenario="crash-loop") as sandbox:
        sandbox.inject_fault()  # CRONOS crash-loops as well: the wrong subject is tempting
        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig_path))
        kube = KubeClient(sandbox.kubeconfig_path)
        yield Cluster(sandbox, kube, client.AppsV1Api(api), client.CoreV1Api(api))
        kube.close()
        api.close()


def _alert(**labels: str) -> Alert:
    return Alert(
        name="KubePodCrashLooping",
        labels={
            "alertname": "KubePodCrashLooping",
            "severity": "warning",
            "namespace": NS,
            "container": "app",
            "job": "kube-state-metrics",
            "service": "prometheus-kube-state-metrics",  # the exporter's, not the subject's
            **labels,
        },
        annotations={"summary": "Pod is crash looping."},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )


def _config(**overrides: Any) -> PodCrashLoopConfig:
    return PodCrashLoopConfig(
        approval_timeout_s=60,
        approval_poll_s=1,
        rollout_timeout_s=30,
        verify_checks=2,
        verify_window_s=0.5,
        verify_timeout_s=20,
        escalation_time_scale=SCALE,
        **overrides,
    )


def _catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **entry: Any) -> None:
    path = tmp_path / "services.yaml"
    service = {"name": "ledger", "team": "Payments", "match": {"namespaces": [NS]}, **entry}
    path.write_text(yaml.safe_dump({"services": [service]}))
    monkeypatch.setenv("ONCALL_SERVICES_FILE", str(path))


def _incident(alert: Alert) -> Incident:
    return IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))


def _mutations(incident: Incident) -> list[Action]:
    return [a for a in incident.actions if a.kind in MUTATIONS and not a.dry_run]


def test_a_workload_in_no_catalog_entry_is_only_diagnosed(cluster: Cluster) -> None:
    cluster.workload("deployment", "ledger", "registry.example/payments/ledger:1.0")
    bad_release(cluster.sandbox, NS, "deployment", "ledger")
    pod = cluster.crash_looping_pod("ledger")
    cronos_before = cluster.cronos_state()
    ledger_before = cluster.kube.health(NS, "ledger").revision
    alert = _alert(pod=pod)

    state = pod_crash_loop(alert=alert, config=_config(), return_state=True)

    assert state.name == "Escalated", state.message
    incident = _incident(alert)
    assert incident.subject is not None
    assert incident.subject.ref == f"{NS}/deployment/ledger"
    assert incident.subject.chain[0] == f"pod/{pod}"
    assert incident.subject.chain[-1] == "deployment/ledger"
    assert incident.subject.catalog_service is None
    diagnosis = next(a for a in incident.actions if a.kind == "diagnosis")
    assert diagnosis.target == f"{NS}/deployment/ledger"
    assert "ImportError" in str(diagnosis.detail["previous_logs"])
    assert "in no service of the catalog" in (state.message or "")
    assert _mutations(incident) == []
    assert not [a for a in incident.actions if a.dry_run]  # nothing even planned
    assert cluster.kube.health(NS, "ledger").revision == ledger_before
    assert cluster.cronos_state() == cronos_before


def test_a_catalogued_workload_is_rolled_back_to_its_good_revision(
    cluster: Cluster, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalog(tmp_path, monkeypatch, workloads=["deployment/ledger"])
    good = "registry.example/payments/ledger:1.0"
    cluster.workload("deployment", "ledger", good)
    broken = bad_release(cluster.sandbox, NS, "deployment", "ledger")
    pod = cluster.crash_looping_pod("ledger")
    cronos_before = cluster.cronos_state()
    alert = _alert(pod=pod)
    human = Human(prefect_api, incident_run_name_for(alert), {"approve": True, "approver": "ana"})
    human.start()

    state = pod_crash_loop(
        alert=alert,
        config=_config(guard={"verified_approver_required": {}}),
        return_state=True,
    )
    human.join(5)
    assert human.error is None, human.error

    assert state.name == "Resolved", state.message
    incident = _incident(alert)
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.subject is not None and incident.subject.catalog_service == "ledger"
    assert incident.service == "ledger"
    [planned] = [a for a in incident.actions if a.kind == "rollback-planned"]
    assert planned.target == "deployment/ledger"
    assert broken in str(planned.detail["before"]["images"])
    assert good in str(planned.detail["after"]["images"])
    [rollback] = _mutations(incident)
    assert (rollback.kind, rollback.target) == ("rollback", f"{NS}/deployment/ledger")
    assert incident.approvals[0].approver == "ana"
    assert cluster.kube.health(NS, "ledger").images == [good]
    assert cluster.cronos_state() == cronos_before


def test_a_deployment_labelled_alert_for_a_statefulset_subject(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalog(tmp_path, monkeypatch)  # the namespace is the service's: its subjects may change
    cluster.workload("statefulset", "ledger-db", "registry.example/payments/ledger-db:14", 1)
    bad_release(cluster.sandbox, NS, "statefulset", "ledger-db")
    cluster.crash_looping_pod("ledger-db")
    alert = _alert(statefulset="ledger-db")

    state = pod_crash_loop(
        alert=alert,
        # A dry run with no approval pause: the rollback is planned and applied to nothing.
        config=_config(guard={"dry_run": True, "require_approval": []}),
        return_state=True,
    )

    incident = _incident(alert)
    assert incident.subject is not None
    assert incident.subject.ref == f"{NS}/statefulset/ledger-db"
    assert incident.subject.service == "ledger-db"
    assert incident.subject.pods == ["ledger-db-0"]
    assert state.name == "DryRun", state.message
    [planned] = [a for a in incident.actions if a.kind == "rollback-planned"]
    assert planned.target == "statefulset/ledger-db"
    assert planned.detail["after"]["revision"] < planned.detail["before"]["revision"]


def test_a_relabelled_alert_finds_its_deployment(cluster: Cluster) -> None:
    cluster.workload("deployment", "ledger", "registry.example/payments/ledger:1.0")
    alert = _alert(app_kubernetes_io_name="ledger")

    pod_crash_loop(
        alert=alert,
        config=_config(relabel={"app_kubernetes_io_name": "deployment"}),
        return_state=True,
    )

    incident = _incident(alert)
    assert incident.subject is not None
    assert incident.subject.ref == f"{NS}/deployment/ledger"
    assert incident.subject.named == "deployment/ledger"


def test_an_unresolvable_subject_gets_the_default_triage(cluster: Cluster) -> None:
    cronos_before = cluster.cronos_state()
    alert = _alert(pod="ledger-7d9f8c6b5-gone1")

    state = pod_crash_loop(alert=alert, config=_config(), return_state=True)

    assert state.name == "Escalated", state.message
    assert "default triage" in (state.message or "")
    assert "ledger-7d9f8c6b5-gone1" in (state.message or "")
    incident = _incident(alert)
    assert incident.subject is None
    assert [a.kind for a in incident.actions] == ["subject-unresolved"]
    assert cluster.cronos_state() == cronos_before


def test_the_incident_is_announced_in_its_services_channel_and_pagerduty_service(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.pagerduty_server import FakePagerDuty
    from tests.fakes.slack_server import FakeSlack

    _catalog(
        tmp_path,
        monkeypatch,
        slack_channel="#payments-oncall",
        pagerduty_routing_key={"env": "LEDGER_PAGERDUTY_KEY"},
    )
    monkeypatch.setenv("LEDGER_PAGERDUTY_KEY", "R0UTINGKEYPAYMENTS000000000000000")
    cluster.workload("deployment", "ledger", "registry.example/payments/ledger:1.0")
    alert = _alert(deployment="ledger")
    channels = {"C0INCIDENT1": "incidents", "C0PAYMENTS1": "payments-oncall"}
    pagerduty = FakePagerDuty(more_keys=("R0UTINGKEYPAYMENTS000000000000000",))
    with FakeSlack(channels=channels) as slack, pagerduty:
        monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", slack.token)
        monkeypatch.setenv("ONCALL_SLACK_API_URL", slack.url)
        monkeypatch.setenv("ONCALL_SLACK_CHANNEL", "#incidents")
        monkeypatch.setenv("ONCALL_PAGERDUTY_ROUTING_KEY", pagerduty.routing_key)
        monkeypatch.setenv("ONCALL_PAGERDUTY_EVENTS_URL", pagerduty.url)

        # Nothing explains crashes of a healthy workload: diagnosed, escalated, unchanged.
        state = pod_crash_loop(alert=alert, config=_config(), return_state=True)

        assert state.name == "Escalated", state.message
        top = [m for m in slack.messages if m.thread_ts is None]
        assert [m.channel for m in top] == ["C0PAYMENTS1"]
        assert "ledger" in top[0].text
        assert all(m.channel == "C0PAYMENTS1" for m in slack.messages)
        incident_id = Incident.id_for(alert)
        events = [e for e in pagerduty.events if e.get("dedup_key") == incident_id]
        assert [e["event_action"] for e in events][:1] == ["trigger"]
        assert {e["routing_key"] for e in events} == {"R0UTINGKEYPAYMENTS000000000000000"}
    incident = _incident(alert)
    assert not [a for a in incident.actions if a.kind == "notify-error"]
    assert _mutations(incident) == []
