"""The playbook router: configured in a file, first match wins, nothing dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from oncall.errors import PermanentError
from oncall.models import Alert, utcnow
from oncall.routing import PlaybookRouter


def _alert(name: str, **labels: str) -> Alert:
    return Alert(
        name=name,
        labels={"alertname": name, **labels},
        starts_at=utcnow(),
        fingerprint="0123456789abcdef",
    )


@pytest.mark.parametrize(
    ("alert", "deployment"),
    [
        (_alert("HighApiErrorRate", severity="critical"), "high-api-error-rate/gremlinsai"),
        (_alert("WeaviateDown"), "weaviate-down/gremlinsai"),
        (_alert("KubePodCrashLooping", namespace="cronos-ai"), "pod-crash-loop/default"),
        (_alert("DBConnectionPoolExhausted"), "db-pool-exhausted/cronos-ai"),
        (_alert("SomethingOdd", severity="P3"), "minor-issue/cronos-ai"),
        (_alert("NeverHeardOfIt"), "default-triage/default"),
    ],
)
def test_packaged_routes(alert: Alert, deployment: str) -> None:
    assert PlaybookRouter.from_file().route(alert) == deployment


def test_first_match_wins_and_regex_is_a_full_match(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "default: triage/x\n"
        "routes:\n"
        "  - {match: {alertname: A, team: db}, deployment: db/a}\n"
        "  - {match: {alertname: A}, deployment: any/a}\n"
        "  - {match_re: {service: 'api-.*'}, deployment: api/any}\n"
    )
    router = PlaybookRouter.from_file(path)
    assert router.route(_alert("A", team="db")) == "db/a"
    assert router.route(_alert("A", team="web")) == "any/a"
    assert router.route(_alert("B", service="api-gw")) == "api/any"
    assert router.route(_alert("B", service="web-api-gw")) == "triage/x"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("routes: [{match: {a: b}, deployment: no-slash}]", "deployment"),
        ("routes: [{match_re: {a: '('}, deployment: a/b}]", "bad regular expression"),
        ("routes: [unclosed", "invalid routes file"),
    ],
)
def test_bad_routes_file_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(PermanentError, match=needle):
        PlaybookRouter.from_file(path)


def test_every_route_has_a_deployment_in_prefect_yaml() -> None:
    from oncall.runner import default_prefect_yaml, load_deployments

    deployed = {f"{d.load_flow().name}/{d.name}" for d in load_deployments(default_prefect_yaml())}
    router = PlaybookRouter.from_file()
    targets = {r.deployment for r in router.routes} | {router.default}
    assert targets <= deployed, targets - deployed
