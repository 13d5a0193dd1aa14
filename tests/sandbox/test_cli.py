"""`oncall sandbox up` in the foreground and `oncall sandbox status` beside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sandbox_cluster import wait_for

ONCALL = str(Path(sys.executable).parent / "oncall")


def _oncall(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONCALL_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([ONCALL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_up_then_status_then_interrupt(tmp_path: Path) -> None:
    assert _oncall(tmp_path, "sandbox", "status").returncode == 1
    kubeconfig = tmp_path / "kc.yaml"
    env = {**os.environ, "ONCALL_HOME": str(tmp_path), "COLUMNS": "200"}
    up = subprocess.Popen(
        [
            ONCALL,
            "sandbox",
            "up",
            "--scenario",
            "minor",
            "--inject",
            "--time-scale",
            "0.01",
            "--interval",
            "0.5",
            "--kubeconfig",
            str(kubeconfig),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = tmp_path / "sandbox" / "state.json"
        wait_for(lambda: state.exists() and kubeconfig.exists(), timeout=30, what="sandbox up")
        wait_for(lambda: "minor" in _oncall(tmp_path, "sandbox", "status").stdout, timeout=20)
        shown = json.loads(_oncall(tmp_path, "sandbox", "status", "--json").stdout)
        assert shown["scenario"] == "minor" and shown["faults"][0]["scenario"] == "minor"
        assert {w["name"] for w in shown["workloads"]} >= {"cronos-ai", "weaviate", "ollama"}
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=30)
    assert up.returncode == 0, out
    assert "kubeconfig" in out and "service cronos-ai/cronos-ai http://127.0.0.1:" in out
    assert not state.exists()
