"""`prefect --no-prompt deploy --all` registers every deployment of prefect.yaml, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oncall.runner import default_prefect_yaml, load_deployments

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def test_prefect_deploy_all_against_the_test_server(prefect_api: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    pool = subprocess.run(
        [PREFECT, "work-pool", "create", "oncall-process", "--type", "process", "--overwrite"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    from prefect.client.orchestration import SyncPrefectClient

    expected = {f"{d.load_flow().name}/{d.name}" for d in load_deployments(default_prefect_yaml())}
    with SyncPrefectClient(prefect_api) as client:
        for name in expected:
            deployment = client.read_deployment_by_name(name)
            assert deployment.work_pool_name == "oncall-process", name
            # Runs execute this checkout: the only pull step sets the recorded directory.
            assert deployment.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
            ], name
        handoff = client.read_deployment_by_name("oncall-handoff/oncall-handoff")
        schedules = [s.schedule for s in handoff.schedules]
        assert [(s.cron, s.timezone) for s in schedules] == [  # type: ignore[union-attr]
            ("0 9 * * 1", "America/Los_Angeles")
        ]
