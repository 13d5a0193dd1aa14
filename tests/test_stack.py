"""`oncall up --sandbox bad-deploy`, then from a second terminal `oncall drill --stack`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port

ONCALL = str(Path(sys.executable).parent / "oncall")


def test_up_then_a_drill_through_the_intake_then_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # As on a fresh machine: no PREFECT_API_URL, so `up` starts and uses its own server.
    env = {
        **os.environ,
        "ONCALL_HOME": str(home),
        "ONCALL_PREFECT_PORT": str(free_port()),
        "COLUMNS": "200",
    }
    env.pop("ONCALL_INTAKE_TOKEN", None)
    env.pop("PREFECT_API_URL", None)
    port = free_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [ONCALL, "up", "--port", str(port), "--sandbox", "bad-deploy"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "oncall is up" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "oncall up did not become ready"
            time.sleep(0.5)
        assert (home / "intake-token").exists()  # generated once, kept private
        assert oct((home / "intake-token").stat().st_mode & 0o777) == "0o600"

        drill = subprocess.run(
            [
                ONCALL,
                "drill",
                "bad-deploy",
                "--stack",
                "--auto-approve",
                "--approver",
                "ops",
                "--intake-url",
                f"http://127.0.0.1:{port}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        out = drill.stdout + drill.stderr
        assert drill.returncode == 0, out[-4000:]
        assert "intake accepted incident" in out and "verified resolved" in out

        incident_id = out.split("intake accepted incident", 1)[1].split()[0]
        shown = subprocess.run(
            [ONCALL, "incidents", "show", incident_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        incident = json.loads(shown.stdout)
        assert incident["alert"]["name"] == "HighApiErrorRate"
        assert incident["status"] == "resolved"
        assert incident["approvals"][0]["approver"] == "ops"
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C
        code = up.wait(60)
    text = (tmp_path / "up.log").read_text()
    assert code == 0, text[-3000:]
    assert "Stopped." in text
    # Every part talked to the stack's server: none fell back to an ephemeral one.
    assert "temporary server" not in text, text[-3000:]
