"""The Prometheus rules: valid for promtool, one per seed alert, on metrics that exist."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from oncall.routing import PlaybookRouter
from oncall_sandbox import Sandbox
from oncall_sandbox.registry import SCENARIOS
from tests.deploy.conftest import DEPLOYMENTS, REPO, run
from tests.prometheus_daemon import compressed_rules

RULES = DEPLOYMENTS / "prometheus" / "rules.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# The seeds' triggers: alert -> (`for`, the labels the playbook acts on).
SEED_ALERTS = {
    "HighApiErrorRate": ("2m", "gremlinsai", "gremlinsai-backend"),  # 5xx > 5 % for 2+ min
    "HighLLMLatency": ("3m", "gremlinsai", "gremlinsai-backend"),  # P99 > 10 s for 3+ min
    "WeaviateDown": ("1m", "gremlinsai", "weaviate"),  # unreachable for 1+ min
    "ServiceDown": ("1m", "cronos-ai", "cronos-ai"),
    "DegradedPerformance": ("5m", "cronos-ai", "cronos-ai"),
    "KubePodCrashLooping": ("5m", "cronos-ai", "cronos-ai"),
    "DBConnectionPoolExhausted": ("2m", "cronos-ai", "cronos-ai"),
}
# Exported by the blackbox exporter, which the sandbox does not simulate.
NOT_SIMULATED = {"probe_success"}
_PROMQL_WORDS = {
    "sum", "max", "min", "rate", "and", "or", "unless", "histogram_quantile", "max_over_time",
}  # fmt: skip


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = run(PROMTOOL, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_compressed_rules_the_end_to_end_tests_fire_are_the_shipped_ones(
    tmp_path: Path,
) -> None:
    compressed = tmp_path / "rules.yaml"
    compressed.write_text(compressed_rules(0.01, min_range_s=5))
    result = run(PROMTOOL, "check", "rules", str(compressed))
    assert result.returncode == 0, result.stdout + result.stderr
    ours = yaml.safe_load(compressed.read_text())["groups"]
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    strip = re.compile(r"\[\d+[smh]\]")
    for mine, theirs in zip(
        [r for g in ours for r in g["rules"]], [r for g in shipped for r in g["rules"]], strict=True
    ):
        assert (mine["alert"], mine["labels"]) == (theirs["alert"], theirs["labels"])
        assert strip.sub("[]", mine["expr"]) == strip.sub("[]", theirs["expr"])  # ranges only


def test_rules_fire_at_the_seed_thresholds_after_their_for_durations() -> None:
    # rules_test.yaml feeds series at and under each threshold and checks when alerts fire.
    result = run(PROMTOOL, "test", "rules", str(DEPLOYMENTS / "prometheus" / "rules_test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_seed_alert_has_a_rule_with_its_for_labels_and_annotations() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    for name, (for_, namespace, service) in SEED_ALERTS.items():
        rule = rules[name]
        assert rule["for"] == for_, name
        labels = rule["labels"]
        assert (labels["namespace"], labels["service"]) == (namespace, service), name
        assert labels["severity"] in {"critical", "error", "warning"}, name
        assert re.fullmatch(r"P[1-4]", labels["priority"]), name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"].startswith("https://"), name


def test_every_alert_a_playbook_route_names_has_a_rule() -> None:
    routes = yaml.safe_load((REPO / "oncall" / "routes.yaml").read_text())["routes"]
    names = {rule["alert"] for rule in _rules()}
    for route in routes:
        if exact := route.get("match", {}).get("alertname"):
            assert exact in names, exact
        if pattern := route.get("match_re", {}).get("alertname"):
            assert any(re.fullmatch(pattern, n) for n in names), pattern


def _playbook(router: PlaybookRouter, labels: dict[str, str]) -> str:
    return next((r.deployment for r in router.routes if r.matches(labels)), router.default)


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600}[unit]


def test_each_rule_reaches_a_playbook_and_matches_its_sandbox_scenario() -> None:
    router = PlaybookRouter.from_file()
    by_playbook: dict[str, dict[str, Any]] = {}
    for rule in _rules():
        playbook = _playbook(router, {"alertname": rule["alert"], **rule["labels"]})
        assert playbook != router.default, f"{rule['alert']} reaches no playbook"
        by_playbook.setdefault(playbook, rule)
    # The sandbox's scenarios raise the same alerts (some under other names): same playbook,
    # same `for` duration.
    for spec in SCENARIOS.values():
        alert = spec.alert
        playbook = _playbook(router, {"alertname": alert.alertname, **alert.labels})
        found = by_playbook.get(playbook)
        assert found is not None, f"no rule for {spec.name} ({alert.alertname} -> {playbook})"
        assert _seconds(found["for"]) == alert.for_seconds, spec.name
        assert found["labels"]["namespace"] == alert.labels["namespace"], spec.name


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range windows
    expr = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", expr))
    return words - _PROMQL_WORDS


def _scrape(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_rules_use_metrics_the_simulated_services_export(sandbox: Sandbox) -> None:
    wanted = set().union(*(_metric_names(rule["expr"]) for rule in _rules())) - NOT_SIMULATED
    targets = [
        ("gremlinsai", "gremlinsai-service"),
        ("cronos-ai", "cronos-ai"),
        ("kube-system", "kube-state-metrics"),
    ]
    exported: set[str] = set()
    deadline = time.monotonic() + 20
    while True:  # labelled series appear with the first simulated requests
        exported = set().union(*(_scrape(sandbox.service_url(ns, svc)) for ns, svc in targets))
        if wanted <= exported or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted - exported == set(), f"rules use metrics nobody exports: {wanted - exported}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum(rate(http_requests_total{code=~"5.."}[2m])) / sum(rate(x_total[2m])) > 0.05',
            {"http_requests_total", "x_total"},
        ),
        (
            "max(a{pod='x'} / on (namespace, service, pod) b) >= 1",
            {"a", "b"},
        ),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert _metric_names(expr.replace("'", '"')) == names
