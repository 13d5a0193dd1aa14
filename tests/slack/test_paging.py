"""The pager stays with people: who is woken by severity, and only a person acknowledges.

Against the fake PagerDuty Events API v2 (which answers as the real one: 202 for every
accepted event, whatever state its incident is in), with the notifier the playbooks use.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from oncall import lifecycle
from oncall.clients.notify import PAGED, PagerDutyNotifier
from oncall.clients.pagerduty import PagerDutyClient
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Alert, Incident, IncidentStatus, PagePolicy, Severity, utcnow
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall.subjects import Subject, SubjectKind
from oncall.wiring import Clients
from tests.escalation.conftest import ONCALL
from tests.fakes.pagerduty_server import FakePagerDuty


def _incident(store: IncidentStore, severity: Severity, **extra: object) -> Incident:
    alert = Alert(
        name="KubePodCrashLooping",
        labels={"service": "ledger", "namespace": "payments", "severity": str(severity)},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    return store.create(
        Incident(id=Incident.id_for(alert), alert=alert, severity=severity, **extra)
    )


def _notifier(
    fake: FakePagerDuty, store: IncidentStore, clients: Clients | None = None
) -> PagerDutyNotifier:
    client = PagerDutyClient(fake.routing_key, fake.url, backoff_s=0.05)
    policy = clients.page_policy_for if clients is not None else None
    return PagerDutyNotifier(client, lambda _: None, policy_for=policy, store=store)


@pytest.fixture
def store(tmp_path: Path) -> IncidentStore:
    return IncidentStore(f"sqlite:///{tmp_path / 'oncall.db'}")


def test_p1_pages_at_once_and_only_a_person_acknowledges(
    fake_pagerduty: FakePagerDuty, store: IncidentStore, prefect_api: str
) -> None:
    incident = _incident(store, Severity.P1)
    notifier = _notifier(fake_pagerduty, store)
    notifier.opened(incident)
    assert fake_pagerduty.actions(incident.id) == ["trigger"]
    # The playbook works, asks, escalates: PagerDuty is not told it is handled.
    notifier.step(incident, "diagnosis")
    notifier.approval_requested(incident, "run-1", "rollback")
    notifier.escalated(incident, "rollback rejected", [])
    assert fake_pagerduty.actions(incident.id) == ["trigger"]

    done = lifecycle.acknowledge(store, PrefectApi(prefect_api), notifier, incident.id, "jane")
    assert done.first and done.incident.acknowledged_by == "jane"
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge"]
    later = lifecycle.acknowledge(store, PrefectApi(prefect_api), notifier, incident.id, "sam")
    assert not later.first and later.incident.acknowledged_by == "jane"
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge"]

    notifier.resolved(incident, "verified")
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge", "resolve"]


@pytest.mark.parametrize("severity", [Severity.P2, Severity.P3])
def test_a_verified_auto_remediation_below_p1_never_reaches_pagerduty(
    fake_pagerduty: FakePagerDuty, store: IncidentStore, severity: Severity
) -> None:
    incident = _incident(store, severity)
    notifier = _notifier(fake_pagerduty, store)
    notifier.opened(incident)
    notifier.step(incident, "restart done")
    notifier.resolved(incident, "verified")
    assert fake_pagerduty.requests == []
    assert not [a for a in store.get(incident.id).actions if a.kind == PAGED]


@pytest.mark.parametrize("severity", [Severity.P2, Severity.P3])
@pytest.mark.parametrize("need", ["approval", "escalation"])
def test_below_p1_a_page_goes_out_once_a_person_is_needed(
    fake_pagerduty: FakePagerDuty, store: IncidentStore, severity: Severity, need: str
) -> None:
    incident = _incident(store, severity)
    notifier = _notifier(fake_pagerduty, store)
    notifier.opened(incident)
    assert fake_pagerduty.requests == []
    if need == "approval":
        notifier.approval_requested(incident, "run-1", "rollback")
    else:
        notifier.escalated(incident, "verification failed", [])
    notifier.escalated(incident, "rejected", [])  # a second need: no second trigger
    assert fake_pagerduty.actions(incident.id) == ["trigger"]
    (paged,) = [a for a in store.get(incident.id).actions if a.kind == PAGED]
    assert paged.target == "pagerduty"
    assert paged.detail["why"] in ("approval requested", "escalated: verification failed")
    assert fake_pagerduty.events[0]["payload"]["custom_details"]["why"] == paged.detail["why"]

    # A re-run (another process) finds the page on the incident and resolves it.
    _notifier(fake_pagerduty, store).resolved(incident, "verified")
    assert fake_pagerduty.actions(incident.id) == ["trigger", "resolve"]


def test_p4_stays_in_slack_whatever_happens(
    fake_pagerduty: FakePagerDuty, store: IncidentStore, prefect_api: str
) -> None:
    incident = _incident(store, Severity.P4)
    notifier = _notifier(fake_pagerduty, store)
    notifier.opened(incident)
    notifier.approval_requested(incident, "run-1", "restart")
    notifier.escalated(incident, "restart rejected", [])
    lifecycle.acknowledge(store, PrefectApi(prefect_api), notifier, incident.id, "jane")
    notifier.resolved(incident, "verified")
    assert fake_pagerduty.requests == []


def test_the_catalog_entry_then_the_settings_decide_the_policy(
    fake_pagerduty: FakePagerDuty, store: IncidentStore, tmp_path: Path
) -> None:
    catalog = tmp_path / "services.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "services": [
                    {
                        "name": "ledger",
                        "match": {"namespaces": ["payments"]},
                        "page_policy": {"P2": "immediately"},
                    }
                ]
            }
        )
    )
    settings = OncallSettings(
        services_file=catalog,
        page_policy={Severity.P4: PagePolicy.IMMEDIATELY},
    )
    clients = Clients(settings)
    subject = Subject(
        kind=SubjectKind.DEPLOYMENT,
        name="ledger",
        namespace="payments",
        named="deployment/ledger",
        catalog_service="ledger",
    )
    ledger_p2 = _incident(store, Severity.P2, subject=subject)
    ledger_p3 = _incident(store, Severity.P3, subject=subject)
    unowned_p2 = _incident(store, Severity.P2)
    unowned_p4 = _incident(store, Severity.P4)
    assert clients.page_policy_for(ledger_p2) is PagePolicy.IMMEDIATELY  # its entry
    assert clients.page_policy_for(ledger_p3) is PagePolicy.WHEN_NEEDED  # the default
    assert clients.page_policy_for(unowned_p2) is PagePolicy.WHEN_NEEDED
    assert clients.page_policy_for(unowned_p4) is PagePolicy.IMMEDIATELY  # the settings
    assert settings.page_policy[Severity.P1] is PagePolicy.IMMEDIATELY  # kept when not given

    notifier = _notifier(fake_pagerduty, store, clients)
    for incident in (ledger_p2, ledger_p3, unowned_p2, unowned_p4):
        notifier.opened(incident)
    assert [e["dedup_key"] for e in fake_pagerduty.events] == [ledger_p2.id, unowned_p4.id]


def test_a_bad_page_policy_in_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONCALL_PAGE_POLICY", '{"P2": "sometimes"}')
    with pytest.raises(ValueError, match=r"immediately.*when_needed.*never"):
        OncallSettings()


@pytest.mark.parametrize(
    ("label", "expected"),
    [("critical", ["trigger"]), ("warning", ["trigger"]), ("info", [])],
)
def test_a_playbook_that_escalates_pages_by_severity_and_never_acknowledges(
    fake_pagerduty: FakePagerDuty,
    oncall_home: Path,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
    label: str,
    expected: list[str],
) -> None:
    """Default triage escalates an alert nobody routes: P1 pages when it opens, P3 when it
    escalates, P4 (info) stays in Slack; the playbook's own steps acknowledge nothing."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.default_triage import default_triage
    from flows.escalation import escalation_step

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        escalation_step.to_deployment(name="default").apply()  # type: ignore[union-attr]
    monkeypatch.setenv("ONCALL_PAGERDUTY_ROUTING_KEY", fake_pagerduty.routing_key)
    monkeypatch.setenv("ONCALL_PAGERDUTY_EVENTS_URL", fake_pagerduty.url)
    monkeypatch.delenv("ONCALL_KUBECONFIG", raising=False)
    alert = Alert(
        name="DiskAlmostFull",
        labels={"alertname": "DiskAlmostFull", "severity": label, "service": "ledger"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    state = default_triage(alert=alert, return_state=True)
    assert state.name == "Escalated", state.message
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(alert))
    assert fake_pagerduty.actions(incident.id) == expected
    why = [a.detail["why"] for a in incident.actions if a.kind == PAGED]
    if label == "critical":
        assert why == ["opened"]
    elif label == "warning":
        assert len(why) == 1 and why[0].startswith("escalated: "), why
    else:
        assert why == []
    assert incident.acknowledged_by is None
    # Its ladder by severity: the seed's for P1, the SLA targets for P3, none for P4.
    timers = PrefectApi(prefect_api).cancel_scheduled(f"incident:{incident.id}", "test")
    assert timers == {"critical": 3, "warning": 2, "info": 0}[label]


def test_oncall_ack_acknowledges_the_page_for_the_person(
    fake_pagerduty: FakePagerDuty, oncall_home: Path, prefect_api: str
) -> None:
    store = IncidentStore(OncallSettings().store_url)
    incident = _incident(store, Severity.P2)
    _notifier(fake_pagerduty, store).approval_requested(incident, "run-1", "rollback")
    env = {
        **os.environ,
        "ONCALL_PAGERDUTY_ROUTING_KEY": fake_pagerduty.routing_key,
        "ONCALL_PAGERDUTY_EVENTS_URL": fake_pagerduty.url,
        "PREFECT_API_URL": prefect_api,
        "ONCALL_HOME": str(oncall_home),
    }
    result = subprocess.run(
        [ONCALL, "ack", incident.id, "--by", "jane"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{incident.id} acknowledged by jane" in result.stdout
    assert fake_pagerduty.actions(incident.id) == ["trigger", "acknowledge"]
    assert store.get(incident.id).acknowledged_by == "jane"


def test_a_person_resolves_then_reopens_and_the_pager_follows(
    fake_pagerduty: FakePagerDuty, oncall_home: Path, prefect_api: str
) -> None:
    store = IncidentStore(OncallSettings().store_url)
    incident = _incident(store, Severity.P2)
    _notifier(fake_pagerduty, store).escalated(incident, "verification failed", [])
    env = {
        **os.environ,
        "ONCALL_PAGERDUTY_ROUTING_KEY": fake_pagerduty.routing_key,
        "ONCALL_PAGERDUTY_EVENTS_URL": fake_pagerduty.url,
        "PREFECT_API_URL": prefect_api,
        "ONCALL_HOME": str(oncall_home),
        "COLUMNS": "200",
    }

    def oncall(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ONCALL, *args], env=env, capture_output=True, text=True, timeout=60)

    done = oncall("resolve", incident.id, "--by", "jane", "--note", "disk freed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resolved by jane: disk freed" in done.stdout
    resolved = store.get(incident.id)
    assert resolved.status is IncidentStatus.RESOLVED and resolved.acknowledged_by == "jane"
    assert fake_pagerduty.actions(incident.id) == ["trigger", "resolve"]
    again = oncall("resolve", incident.id, "--by", "sam")
    assert again.returncode == 1 and "already resolved" in again.stdout

    back = oncall("reopen", incident.id, "--by", "sam", "--reason", "disk full again")
    assert back.returncode == 0, back.stdout + back.stderr
    reopened = store.get(incident.id)
    assert reopened.status is IncidentStatus.ESCALATED
    assert reopened.transitions[-1].note == "reopened by sam: disk full again"
    # PagerDuty's incident was resolved: the reopened one pages afresh.
    assert fake_pagerduty.actions(incident.id) == ["trigger", "resolve", "trigger"]
    twice = oncall("reopen", incident.id, "--by", "sam", "--reason", "x")
    assert twice.returncode == 1 and "not resolved: nothing to reopen" in twice.stdout


def test_declare_then_escalate_to_the_manager(
    fake_pagerduty: FakePagerDuty, oncall_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`oncall declare` opens an incident no alert raised, with its declarer on it; `oncall
    escalate --to manager` hands it on to the rotation's manager, paging as needed."""
    from typer.testing import CliRunner

    from oncall.cli import app

    monkeypatch.setenv("ONCALL_PAGERDUTY_ROUTING_KEY", fake_pagerduty.routing_key)
    monkeypatch.setenv("ONCALL_PAGERDUTY_EVENTS_URL", fake_pagerduty.url)
    monkeypatch.setenv("COLUMNS", "200")
    store = IncidentStore(OncallSettings().store_url)
    cli = CliRunner()

    title = "payments double-charged"
    declared = cli.invoke(
        app, ["declare", "ledger", "--title", title, "--by", "jane", "--severity", "p3"]
    )
    assert declared.exit_code == 0, declared.output
    (incident,) = store.list()
    assert incident.id in declared.output
    assert (incident.severity, incident.service, incident.acknowledged_by) == (
        Severity.P3,
        "ledger",
        "jane",
    )
    assert incident.alert.annotations["summary"] == "payments double-charged"
    assert incident.status is IncidentStatus.ACKNOWLEDGED
    assert fake_pagerduty.requests == []  # P3: nobody woken while jane has it

    handed = cli.invoke(
        app, ["escalate", incident.id, "--to", "manager", "--by", "jane", "--reason", "refunds"]
    )
    assert handed.exit_code == 0, handed.output
    # This week's escalation manager, as the rotation says (it changes weekly).
    (manager,) = Clients(OncallSettings()).contacts_for("escalation_manager")
    assert manager in " ".join(handed.output.split())  # the console wraps long lines
    after = store.get(incident.id)
    assert after.status is IncidentStatus.ESCALATED
    assert after.transitions[-1].note == "escalated to escalation_manager by jane: refunds"
    assert fake_pagerduty.actions(incident.id) == ["trigger"]  # a person is needed now

    for args, message in [
        (["escalate", incident.id, "--to", "ceo", "--by", "jane"], "--to: 'ceo'"),
        (["declare", "ledger", "--title", "x", "--by", "jane", "--severity", "P9"], "P9"),
        (["escalate", "inc-doesnotexist", "--to", "vp", "--by", "jane"], "inc-doesnotexist"),
    ]:
        refused = cli.invoke(app, args)
        assert refused.exit_code != 0 and message in refused.output, (args, refused.output)
    assert len(store.list()) == 1
