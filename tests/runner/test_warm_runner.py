"""The warm runner with many runs in flight, on the embedded (SQLite) Prefect server.

Prefect's server on SQLite answers at most 100 requests at once and counts an open
websocket as one. Each flow run used to hold one (its suspension observer) for as long as
it ran, paused time included, so ~98 runs waiting for approval stopped the server from
answering anything. The runner's runs now share one observer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.states import Pending, Suspended
from prefect.utilities.engine import propose_state_sync

from oncall.clients.prefect_api import PrefectApi
from oncall.runner import DeploymentSpec, WarmRunner

PAUSING = DeploymentSpec(name="runner-test", entrypoint="tests.runner.flows:awaiting_approval")
WORKING = DeploymentSpec(name="runner-test", entrypoint="tests.runner.flows:long_checks")


@pytest.fixture
def runner(prefect_api: str) -> Iterator[WarmRunner]:
    """A warm runner serving the two test flows on the session's Prefect server."""
    warm = WarmRunner(prefect_api, [PAUSING, WORKING], poll_s=0.2)
    ready = threading.Event()
    thread = threading.Thread(target=warm.serve, kwargs={"on_ready": lambda _: ready.set()})
    thread.start()
    assert ready.wait(60), "the runner did not register its deployments"
    yield warm
    warm.stop(grace_s=30)
    thread.join(15)


def deployment_id(runner: WarmRunner, name: str) -> UUID:
    return next(i for i, full in runner.names.items() if full == name)


def read_runs(client: SyncPrefectClient, ids: list[UUID]) -> list[FlowRun]:
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
    )


def is_running(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_running()


# Its own deadlines (420 s to pause, 300 s to finish) bound it; pytest-timeout's default of
# 300 s cut it off on a loaded machine before they did.
@pytest.mark.timeout(900)
def test_110_runs_paused_for_approval_leave_the_server_answering(
    runner: WarmRunner, prefect_api: str
) -> None:
    deployment = deployment_id(runner, "awaiting-approval/runner-test")
    with SyncPrefectClient(prefect_api) as client:
        # An alert storm: the runs are created while the runner is already starting them.
        ids = [client.create_flow_run_from_deployment(deployment).id for _ in range(110)]
        deadline = time.monotonic() + 420
        paused = 0
        while time.monotonic() < deadline:
            runs = read_runs(client, ids)
            paused = sum(1 for r in runs if r.state and r.state.is_paused())
            assert not [r.name for r in runs if r.state and r.state.is_final()]
            if paused == len(ids):
                break
            time.sleep(2)
        assert paused == len(ids), f"only {paused} of {len(ids)} runs reached Paused"

        # With all of them waiting, the server still answers at once ...
        started = time.monotonic()
        assert httpx.get(f"{prefect_api}/hello", timeout=10).status_code == 200
        assert time.monotonic() - started < 5
        # ... and every approval still gets through, eight approvers at a time (an alert
        # storm has several people approving at once).
        with ThreadPoolExecutor(max_workers=8) as approvers:
            list(approvers.map(partial(_resume, prefect_api), ids))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = read_runs(client, ids)
            if all(r.state and r.state.is_final() for r in runs):
                break
            time.sleep(2)
        assert sorted({r.state.name for r in runs if r.state}) == ["Completed"]


def _resume(prefect_api: str, run_id: UUID) -> None:
    """Resume one run as an approver's decision reaches the server (the Slack intake, the
    CLI and the API all call this): a server kept busy by the storm answers 503, and the
    decision is tried again rather than dropped."""
    PrefectApi(prefect_api).resume(run_id, {"approve": False, "approver": "test"})


def test_a_suspension_requested_from_outside_reaches_a_warm_run(
    runner: WarmRunner, prefect_api: str
) -> None:
    deployment = deployment_id(runner, "long-checks/runner-test")
    with SyncPrefectClient(prefect_api) as client:
        run_id = client.create_flow_run_from_deployment(deployment).id
        deadline = time.monotonic() + 60
        while not is_running(client.read_flow_run(run_id)):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        # What the UI's Suspend does: propose the state over the API. Nothing in this
        # process is told directly; the runner has to observe it.
        client.set_flow_run_state(run_id, Suspended(pause_key="operator"))
        deadline = time.monotonic() + 60
        while run_id in runner.inflight:
            assert time.monotonic() < deadline, "the run kept working after its suspension"
            time.sleep(0.2)
        state = client.read_flow_run(run_id).state
        assert state is not None and state.name == "Suspended"


def test_a_run_claimed_by_a_runner_that_died_is_run_by_the_next(prefect_api: str) -> None:
    """A runner killed between its claim (Pending) and the run's start must not leave the
    run Pending for good: an escalation timer would never fire."""
    dead = WarmRunner(prefect_api, [WORKING])
    deployment = dead.register()["long-checks/runner-test"]
    with SyncPrefectClient(prefect_api) as client:
        run_id = client.create_flow_run_from_deployment(deployment, parameters={"steps": 1}).id
        claimed = propose_state_sync(client, Pending(), flow_run_id=run_id)  # ... then it died
        assert claimed.is_pending()
        warm = WarmRunner(prefect_api, [WORKING], poll_s=0.2, orphaned_after_s=1.0)
        thread = threading.Thread(target=warm.serve)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not (state := client.read_flow_run(run_id).state) or not state.is_final():
                assert time.monotonic() < deadline, f"the orphaned run stayed {state}"
                time.sleep(0.2)
        finally:
            warm.stop(grace_s=10)
            thread.join(15)
    assert state.is_completed(), state
    assert warm.started_runs == 1
