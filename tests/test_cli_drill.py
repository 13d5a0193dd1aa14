"""The README's first command, as a user runs it: `oncall drill bad-deploy --auto-approve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ONCALL = str(Path(sys.executable).parent / "oncall")


def _oncall(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONCALL_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [ONCALL, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_drill_resolves_the_incident_and_records_it(prefect_api: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _oncall("drill", "bad-deploy", "--auto-approve", "--approver", "drill-bot", home=home)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "FIRING HighApiErrorRate" in out
    assert "verified resolved" in out
    assert f"{prefect_api.removesuffix('/api')}/runs/flow-run/" in out
    assert "rollback gremlinsai/deployment/gremlinsai-backend-blue" in out
    assert "now revision 4 (ghcr.io/gremlinsai/backend:1.4.2), complete" in out
    assert "verify_error_rate" in out  # the step timings table
    assert "verification passed: 5xx rate" in out  # what it measured, and from where
    flat = " ".join(out.split())
    selected = '{namespace="gremlinsai",service="gremlinsai-service"}'
    assert f"sum(increase(http_requests_total{selected}" in flat  # the PromQL it verified with
    # The postmortem is drafted as soon as the incident resolves.
    draft_path = out.split("Postmortem draft:", 1)[1].split()[0]
    draft = Path(draft_path).read_text()
    assert "drill-bot" in draft
    assert "ghcr.io/gremlinsai/backend:1.5.0" in draft and "1.4.2" in draft

    listed = _oncall("incidents", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    (incident,) = json.loads(listed.stdout)
    assert incident["alert"]["name"] == "HighApiErrorRate"
    assert [t["status"] for t in incident["transitions"]] == [
        "triggered",
        "acknowledged",
        "mitigated",
        "resolved",
    ]
    assert incident["approvals"][0]["approver"] == "drill-bot"
    assert incident["approvals"][0]["decision"] == "approved"
    rollout = next(a for a in incident["actions"] if a["kind"] == "rollout")
    assert rollout["detail"]["images"] == ["ghcr.io/gremlinsai/backend:1.4.2"]
    assert rollout["detail"]["revision"] == 4
    (verification,) = [a for a in incident["actions"] if a["kind"] == "verification"]
    measured = verification["detail"]["measurements"]
    assert verification["detail"]["passed"] and measured[-1]["verdict"] == "healthy"
    assert all(m["at"] for m in measured)
    checks = [m["verdict"] for m in measured if m["verdict"] != "inconclusive"]
    assert checks[-3:] == ["healthy"] * 3  # the drill's three checks in a row


def test_unknown_scenario_is_a_clear_error(tmp_path: Path) -> None:
    result = _oncall("drill", "no-such-fault", home=tmp_path)
    assert result.returncode == 2
    assert "unknown scenario 'no-such-fault'" in result.stdout


def test_unreachable_prefect_api_is_a_clear_error(tmp_path: Path) -> None:
    env_home = tmp_path / "home"
    env = {**os.environ, "ONCALL_HOME": str(env_home), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    result = subprocess.run(
        [ONCALL, "drill", "bad-deploy", "--auto-approve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "does not answer" in result.stdout
