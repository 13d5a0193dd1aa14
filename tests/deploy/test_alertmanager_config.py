"""The Alertmanager config: valid for amtool, every alert to the intake, no inline secret."""

from __future__ import annotations

import shutil

import yaml

from tests.deploy.conftest import DEPLOYMENTS, run

CONFIG = DEPLOYMENTS / "alertmanager" / "alertmanager.yml"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"


def test_amtool_checks_the_config() -> None:
    result = run(AMTOOL, "check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_intake_receiver_gets_every_alert_resolved_ones_too() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["receiver"] == "oncall-intake"
    (receiver,) = (r for r in config["receivers"] if r["name"] == "oncall-intake")
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://oncall-intake.oncall:8080/v1/alerts/alertmanager"
    assert hook["send_resolved"] is True
    assert hook["max_alerts"] == 0  # never truncate a group
    auth = hook["http_config"]["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    assert "credentials" not in auth  # the token lives in a mounted Secret
    assert auth["credentials_file"].startswith("/etc/alertmanager/secrets/")
