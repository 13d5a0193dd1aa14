"""`oncall up --sandbox bad-deploy`, then from a second terminal `oncall drill --stack`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import yaml

from oncall.runner import default_prefect_yaml
from tests.conftest import free_port

ONCALL = str(Path(sys.executable).parent / "oncall")


def quick_verification_deployments(path: Path) -> Path:
    """The shipped prefect.yaml, with the bad-deploy playbook verifying 3 windows of 2 s
    instead of 3 of 30 s: the same checks, a minute and a half sooner."""
    doc = yaml.safe_load(default_prefect_yaml().read_text())
    (playbook,) = [
        d for d in doc["deployments"] if d["entrypoint"].endswith(":high_api_error_rate")
    ]
    assert playbook["parameters"]["config"]["verify_window_s"] == 30  # what is shortened
    playbook["parameters"]["config"]["verify_window_s"] = 2
    (crash_loop,) = [d for d in doc["deployments"] if d["entrypoint"].endswith(":pod_crash_loop")]
    crash_loop["parameters"] = {"config": {"verify_window_s": 2, "rollout_timeout_s": 60}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def assert_the_control_plane_is_closed(home: Path, prefect_port: int) -> None:
    """Prefect's API refuses whoever lacks the auth string `up` generated: no anonymous
    resume of a paused run (an approval), no reading, no writing."""
    api = f"http://127.0.0.1:{prefect_port}/api"
    auth_file = home / "prefect-auth"
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"
    user, password = auth_file.read_text().strip().split(":", 1)
    resume = {"run_input": {"approve": True, "approver": ""}}
    anonymous = httpx.post(f"{api}/flow_runs/{uuid.uuid4()}/resume", json=resume, timeout=10)
    assert anonymous.status_code == 401
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code == 401
    wrong = httpx.post(f"{api}/flow_runs/filter", json={}, auth=(user, "guess"), timeout=10)
    assert wrong.status_code == 401
    right = httpx.post(f"{api}/flow_runs/filter", json={}, auth=(user, password), timeout=10)
    assert right.status_code == 200
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # probes stay open


def team_catalog(path: Path) -> Path:
    """The shipped catalog plus a team's own service, `ledger` in namespace `payments`."""
    from oncall.catalog import EXAMPLE_SERVICES

    doc = yaml.safe_load(EXAMPLE_SERVICES.read_text())
    for entry in doc["services"]:
        entry.pop("rotation_file", None)  # relative to examples/: not next to this copy
    doc["services"].append(
        {"name": "ledger", "team": "Payments", "match": {"namespaces": ["payments"]}}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def apply_team_workload(home: Path) -> None:
    """`kubectl apply` of a team's own Deployment and Service into the stack's sandbox."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(home / "sandbox" / "kubeconfig"))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    labels = {"app": "ledger"}
    core.create_namespace({"metadata": {"name": "payments"}})
    apps.create_namespaced_deployment(
        "payments",
        {
            "metadata": {"name": "ledger"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "ledger", "image": "registry.example/payments/ledger:1.0"}
                        ]
                    },
                },
            },
        },
    )
    core.create_namespaced_service(
        "payments",
        {"metadata": {"name": "ledger"}, "spec": {"selector": labels, "ports": [{"port": 8080}]}},
    )
    deadline = time.monotonic() + 60
    while (apps.read_namespaced_deployment("ledger", "payments").status.ready_replicas or 0) < 2:
        assert time.monotonic() < deadline, "ledger did not become ready"
        time.sleep(0.2)
    api.close()


def test_up_then_a_drill_through_the_intake_then_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # As on a fresh machine: no PREFECT_API_URL, so `up` starts and uses its own server.
    env = {
        **os.environ,
        "ONCALL_HOME": str(home),
        "ONCALL_PREFECT_PORT": str(free_port()),
        "ONCALL_SERVICES_FILE": str(team_catalog(tmp_path / "services.yaml")),
        "COLUMNS": "200",
    }
    env.pop("ONCALL_INTAKE_TOKEN", None)
    env.pop("PREFECT_API_URL", None)
    port = free_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [
            ONCALL,
            "up",
            "--port",
            str(port),
            "--sandbox",
            "bad-deploy",
            "--prefect-yaml",
            str(quick_verification_deployments(tmp_path / "prefect.yaml")),
        ],
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
        assert_the_control_plane_is_closed(home, int(env["ONCALL_PREFECT_PORT"]))

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

        # A team drills its own service: its workload applied to the stack's sandbox, a bad
        # release of it, the KubePodCrashLooping alert for one of its pods, the rollback.
        apply_team_workload(home)
        own = subprocess.run(
            [
                ONCALL,
                "drill",
                "--stack",
                "--target",
                "payments/deployment/ledger",
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
        out = own.stdout + own.stderr
        assert own.returncode == 0, out[-4000:]
        assert "ledger:1.0-broken" in out and "verified resolved" in out
        incident_id = out.split("intake accepted incident", 1)[1].split()[0]
        shown = subprocess.run(
            [ONCALL, "incidents", "show", incident_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        incident = json.loads(shown.stdout)
        assert incident["playbook"] == "pod-crash-loop"
        assert incident["subject"]["name"] == "ledger"
        assert incident["subject"]["catalog_service"] == "ledger"
        assert [a["target"] for a in incident["actions"] if a["kind"] == "rollback"] == [
            "payments/deployment/ledger"
        ]
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C
        code = up.wait(60)
    text = (tmp_path / "up.log").read_text()
    assert code == 0, text[-3000:]
    assert "Stopped." in text
    # Every part talked to the stack's server: none fell back to an ephemeral one.
    assert "temporary server" not in text, text[-3000:]
