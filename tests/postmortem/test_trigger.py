"""Resolution -> `schedule_postmortem` -> the warm worker runs post-incident -> file within 60 s."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from oncall.clients.prefect_api import PrefectApi
from oncall.models import IncidentStatus
from oncall.postmortem import POSTMORTEM_DEPLOYMENT, schedule_postmortem
from oncall.runner import DeploymentSpec, WarmRunner
from tests.postmortem.conftest import APPROVER, Drill

# The entry the lead adds to prefect.yaml (the worker registers every entry there).
SPEC = DeploymentSpec(
    name="default",
    entrypoint="flows/postmortem.py:post_incident",
    description="Post-incident: evidence gathered, postmortem drafted.",
    tags=["postmortem"],
)


def test_postmortem_exists_within_60_s_of_resolution_through_the_worker(
    resolved_drill: Drill, prefect_api: str, oncall_home: Path
) -> None:
    inc = resolved_drill.incident
    resolved = inc.at(IncidentStatus.RESOLVED)
    assert resolved is not None
    runner = WarmRunner(prefect_api, [SPEC], poll_s=0.2)
    ready = threading.Event()
    worker = threading.Thread(target=runner.serve, kwargs={"on_ready": lambda _: ready.set()})
    worker.start()
    try:
        assert ready.wait(30), "worker did not register"
        prefect = PrefectApi(prefect_api)
        run = schedule_postmortem(inc.id, prefect)
        assert run is not None, f"{POSTMORTEM_DEPLOYMENT} not registered"
        # The same incident schedules the same run (a re-run playbook adds nothing).
        again = schedule_postmortem(inc.id, prefect)
        assert again is not None and again.id == run.id
        path = oncall_home / "postmortems" / f"{inc.id}.md"
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert path.exists(), "no postmortem within 60 s"
        assert path.stat().st_mtime - resolved.timestamp() < 60
        assert f"approved by {APPROVER}" in path.read_text()
    finally:
        runner.stop(grace_s=30)
        worker.join(10)
    final = prefect.read_flow_run(run.id)
    assert final.state is not None and final.state.is_completed()
    assert "postmortem" in final.tags
