"""The service catalog and subject references: validation, ownership, label conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oncall.catalog import EXAMPLE_SERVICES, ServiceCatalog, is_sandbox, load_catalog
from oncall.errors import PermanentError
from oncall.subjects import Subject, SubjectKind, SubjectUnresolved, subject_ref


def _write(tmp_path: Path, services: list[dict[str, object]]) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump({"services": services}))
    return path


def test_the_shipped_catalog_holds_the_two_seeds() -> None:
    catalog = ServiceCatalog.from_file(EXAMPLE_SERVICES)
    assert [e.name for e in catalog] == ["gremlinsai-backend", "cronos-ai"]
    cronos = catalog.get("cronos-ai")
    assert cronos.known_good == {"cronos-ai-config": {"CACHE_TTL_SECONDS": "300"}}
    assert cronos.policy().allowed_namespaces == ["cronos-ai"]
    assert "cronos-ai/deployment/cronos-ai" in cronos.workload_refs()
    # Each company's own people: the rotation files sit next to the catalog.
    assert cronos.rotation_file == EXAMPLE_SERVICES.parent / "rotation-cronos.yaml"
    gremlins = catalog.get("gremlinsai-backend")
    assert gremlins.rotation_file == EXAMPLE_SERVICES.parent / "rotation.yaml"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"name": "ledger", "guard": {"require_approval": ["rollback", "rolback"]}},
            "services[0] (ledger): guard.require_approval.1",
        ),
        (
            {"name": "ledger", "guard": {"budget_per_hour": {"restrat": 1}}},
            "services[0] (ledger): guard.budget_per_hour.restrat",
        ),
        (
            {"name": "ledger", "match": {"namespaces": ["payments"]}, "workloads": ["pod/x"]},
            "expected [namespace/]kind/name",
        ),
        (
            {"name": "ledger", "pagerduty_routing_key": {"value": "R0UT1NGKEY"}},
            "services[0] (ledger): pagerduty_routing_key",
        ),
        (
            {"name": "ledger", "dependencies": [{"name": "db", "kind": "postgres"}]},
            "needs `dsn`",
        ),
        ({"name": "ledger", "workloads": ["deployment/ledger"]}, "need match.namespaces"),
    ],
)
def test_an_invalid_catalog_names_file_entry_and_field(
    tmp_path: Path, entry: dict[str, object], expected: str
) -> None:
    path = _write(tmp_path, [entry])
    with pytest.raises(PermanentError) as info:
        ServiceCatalog.from_file(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert "R0UT1NGKEY" not in str(info.value)  # a secret pasted inline is never echoed


def test_a_mistyped_action_kind_is_named_in_the_error(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"name": "ledger", "guard": {"require_approval": ["rolback"]}}])
    with pytest.raises(PermanentError, match="'rolback'"):
        ServiceCatalog.from_file(path)


def test_a_secret_is_a_reference_never_a_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [{"name": "ledger", "pagerduty_routing_key": {"secret": "pd", "key": "routing-key"}}],
    )
    entry = ServiceCatalog.from_file(path).get("ledger")
    assert entry.pagerduty_routing_key is not None
    assert entry.pagerduty_routing_key.describe() == "secret pd[routing-key]"


def _subject(namespace: str, kind: SubjectKind, name: str) -> Subject:
    return Subject(kind=kind, name=name, namespace=namespace, named=f"{kind}/{name}")


def test_ownership_by_listed_workload_then_namespace_and_labels(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"name": "shared", "match": {"namespaces": ["apps"], "labels": {"team": "core"}}},
            {"name": "ledger", "match": {"namespaces": ["payments"]}},
            {"name": "billing", "workloads": ["apps/deployment/billing"]},
        ],
    )
    catalog = ServiceCatalog.from_file(path)
    billing = _subject("apps", SubjectKind.DEPLOYMENT, "billing")
    assert catalog.owner_of(billing, {"team": "core"}).name == "billing"  # type: ignore[union-attr]
    other = _subject("apps", SubjectKind.DEPLOYMENT, "search")
    assert catalog.owner_of(other, {"team": "core"}).name == "shared"  # type: ignore[union-attr]
    assert catalog.owner_of(other, {"team": "search"}) is None
    ledger = _subject("payments", SubjectKind.STATEFULSET, "ledger-db")
    entry = catalog.owner_of(ledger, {})
    assert entry is not None and entry.name == "ledger"
    assert entry.may_change(ledger) == {"payments/statefulset/ledger-db"}


def test_no_catalog_file_means_none_on_a_real_cluster_and_the_seeds_on_the_sandbox(
    tmp_path: Path,
) -> None:
    assert load_catalog(None, sandbox=False).services == []
    assert len(load_catalog(None, sandbox=True).services) == 2
    real = tmp_path / "real"
    real.write_text(
        yaml.safe_dump(
            {
                "current-context": "prod",
                "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443"}}],
            }
        )
    )
    assert not is_sandbox(real)
    sandbox = tmp_path / "sandbox"
    sandbox.write_text(
        yaml.safe_dump(
            {
                "current-context": "sandbox",
                "clusters": [{"name": "sandbox", "cluster": {"server": "http://127.0.0.1:6443"}}],
            }
        )
    )
    assert is_sandbox(sandbox)
    assert not is_sandbox(tmp_path / "missing")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"namespace": "p", "pod": "ledger-1", "service": "ksm"}, "p/pod/ledger-1"),
        ({"namespace": "p", "deployment": "ledger", "pod": "ledger-1"}, "p/deployment/ledger"),
        ({"namespace": "p", "statefulset": "db"}, "p/statefulset/db"),
        ({"namespace": "p", "daemonset": "agent"}, "p/daemonset/agent"),
        ({"namespace": "p", "job_name": "nightly"}, "p/job/nightly"),
        ({"namespace": "p", "service": "ledger"}, "p/service/ledger"),
        ({"node": "worker-3"}, "node/worker-3"),
        ({"instance": "10.0.0.7:9100"}, "node/10.0.0.7"),
    ],
)
def test_standard_labels_name_the_subject(labels: dict[str, str], expected: str) -> None:
    assert str(subject_ref(labels)) == expected


def test_a_relabel_map_reads_other_label_names() -> None:
    labels = {"kubernetes_namespace": "p", "app": "ledger"}
    ref = subject_ref(labels, {"kubernetes_namespace": "namespace", "app": "deployment"})
    assert str(ref) == "p/deployment/ledger"
    # A label the alert already has under the standard name wins over a relabelled one.
    both = {"namespace": "p", "deployment": "real", "app": "other"}
    assert subject_ref(both, {"app": "deployment"}).name == "real"


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"alertname": "Watchdog"}, "none of the labels"),
        ({"pod": "ledger-1"}, "no namespace label"),
    ],
)
def test_labels_that_name_no_subject(labels: dict[str, str], reason: str) -> None:
    with pytest.raises(SubjectUnresolved, match=reason):
        subject_ref(labels)


def test_services_check_validates_and_resolves_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from oncall.cli import app

    monkeypatch.setenv("ONCALL_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    for name in ("ONCALL_PAGERDUTY_ROUTING_KEY", "ONCALL_POSTGRES_DSN", "ONCALL_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    unset = runner.invoke(app, ["services", "check", str(EXAMPLE_SERVICES), "--no-cluster"])
    assert unset.exit_code == 1
    assert "environment variable ONCALL_PAGERDUTY_ROUTING_KEY is not set" in unset.output
    for name in ("ONCALL_PAGERDUTY_ROUTING_KEY", "ONCALL_POSTGRES_DSN", "ONCALL_REDIS_URL"):
        monkeypatch.setenv(name, "s3cr3t-value")
    ok = runner.invoke(app, ["services", "check", str(EXAMPLE_SERVICES), "--no-cluster"])
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output
    assert "rotation-cronos.yaml: ok" in ok.output
    assert "s3cr3t" not in ok.output  # references are shown, never values
    bad = _write(tmp_path, [{"name": "x", "guard": {"require_approval": ["rolback"]}}])
    invalid = runner.invoke(app, ["services", "check", str(bad), "--no-cluster"])
    assert invalid.exit_code == 1
    assert "services[0] (x): guard.require_approval.0" in invalid.output
    listed = runner.invoke(app, ["services", "list", str(EXAMPLE_SERVICES)])
    assert listed.exit_code == 0 and "cronos-ai" in listed.output


def test_each_service_pages_its_own_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from oncall.models import Alert, Incident, Severity, utcnow
    from oncall.settings import OncallSettings
    from oncall.wiring import Clients

    monkeypatch.setenv("ONCALL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONCALL_SERVICES_FILE", str(EXAMPLE_SERVICES))
    monkeypatch.delenv("ONCALL_ROTATION_FILE", raising=False)
    clients = Clients(OncallSettings())
    alert = Alert(
        name="KubePodCrashLooping",
        labels={"namespace": "cronos-ai", "pod": "cronos-ai-1"},
        starts_at=utcnow(),
        fingerprint=uuid.uuid4().hex[:16],
    )
    unresolved = Incident(alert=alert, severity=Severity.P2)
    cronos = unresolved.model_copy(
        update={
            "subject": Subject(
                kind=SubjectKind.DEPLOYMENT,
                name="cronos-ai",
                namespace="cronos-ai",
                named="pod/cronos-ai-1",
                catalog_service="cronos-ai",
            )
        }
    )
    cronos_people = {"Priya Nair", "Tom Becker"}
    gremlins_people = {"Alex Chen", "Sarah Johnson", "David Kim"}
    [paged] = clients.contacts_for("primary", cronos)
    assert paged.split(" (")[0] in cronos_people
    [manager] = clients.contacts_for("engineering_manager", cronos)
    assert manager.startswith("Omar Haddad")
    # No subject resolved: the worker's rotation (the GremlinsAI example by default).
    [fallback] = clients.contacts_for("primary", unresolved)
    assert fallback.split(" (")[0] in gremlins_people
