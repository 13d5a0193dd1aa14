"""Approvals only by people who may approve: verified approvers, never a blank name.

A P1 rollback under the default policy: a decision typed into the Prefect UI (here sent
through Prefect's resume API exactly as the UI form does) is refused and the run keeps
waiting; a blank approver is no decision at all; an approver token sent to the intake's
`POST /v1/approvals/{run}` is a verified decision, and the rollback happens.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.approvers import ApproverTokens
from oncall.clients.prefect_api import PrefectApi
from oncall.guards import GuardPolicy
from oncall.intake.app import create_app
from oncall.models import Incident
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.conftest import free_port
from tests.intake.conftest import ONCALL, TOKEN, fast_intake
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster, faulted  # noqa: F401

GOOD = "ghcr.io/gremlinsai/backend:1.4.2"


class Playbook(threading.Thread):
    """The playbook in-process, as the worker runs it; keeps its final state."""

    def __init__(self, cluster: FaultedCluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.state, self.error = cluster, None, None

    def run(self) -> None:
        try:
            self.state = high_api_error_rate(
                alert=self.cluster.alert, config=self.cluster.config, return_state=True
            )
        except BaseException as exc:  # reported by the test
            self.error = exc  # type: ignore[assignment]


def _paused_again(prefect: PrefectApi, run_id: UUID, after_key: str) -> str:
    """Wait until the run pauses with a new pause key (it kept waiting); that key."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = prefect.read_flow_run(run_id).state
        key = state.state_details.pause_key if state else None
        if state and state.is_paused() and key and key != after_key:
            return str(key)
        time.sleep(0.2)
    raise AssertionError("the run did not go back to waiting")


@pytest.fixture
def intake(oncall_home: Path, prefect_api: str) -> Iterator[TestClient]:
    settings = OncallSettings(home=oncall_home, intake_token=SecretStr(TOKEN))
    app = create_app(settings, fast_intake(), prefect_api_url=prefect_api, dispatch=False)
    with TestClient(app) as client:
        yield client


def test_p1_rollback_takes_only_a_verified_decision(
    faulted: FaultedCluster,  # noqa: F811
    prefect_api: str,
    intake: TestClient,
) -> None:
    # The default policy of a deployed playbook (drills relax it).
    faulted.config.guard.verified_approver_required = GuardPolicy().verified_approver_required
    assert faulted.config.guard.needs_verified_approver("rollback", "P1")  # type: ignore[arg-type]
    prefect = PrefectApi(prefect_api)
    playbook = Playbook(faulted)
    playbook.start()
    paused = prefect.wait_for_pause(incident_run_name_for(faulted.alert), timeout_s=60)
    key = str(paused.state.state_details.pause_key)  # type: ignore[union-attr]

    # The Prefect UI's form, as anyone who reaches the API can send it: refused.
    ui: dict[str, Any] = {"approve": True, "approver": "mallory", "reason": "trust me"}
    prefect.resume(paused.id, ui)
    key = _paused_again(prefect, paused.id, key)
    # A forged attestation is no better.
    prefect.resume(paused.id, {**ui, "attestation": "v1:api:" + "0" * 64})
    key = _paused_again(prefect, paused.id, key)
    # A blank approver is no decision.
    prefect.resume(paused.id, {"approve": True, "approver": "   ", "reason": ""})
    key = _paused_again(prefect, paused.id, key)
    assert faulted.kube.health(NAMESPACE, BLUE).revision == 3  # nothing rolled back

    store = IncidentStore(OncallSettings().store_url)
    token = ApproverTokens(store).add("Jane Verified")
    url = f"/v1/approvals/{paused.id}"
    body = {"approve": True, "reason": "1.5.0 spikes 5xx"}
    for bad in ("", "Bearer wrong", f"Bearer {TOKEN}", f"Basic {token}"):
        refused = intake.post(url, json=body, headers={"Authorization": bad} if bad else {})
        assert refused.status_code == 401, bad
    answer = intake.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["approver"] == "Jane Verified"
    again = intake.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 409  # decided: not waiting any more

    playbook.join(90)
    assert playbook.error is None, playbook.error
    assert playbook.state.name == "Resolved", playbook.state.message  # type: ignore[attr-defined]
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert (after.images, after.revision) == ([GOOD], 4)
    incident = store.get(Incident.id_for(faulted.alert))
    (approval,) = incident.approvals
    assert (approval.approver, approval.channel, approval.verified) == (
        "Jane Verified",
        "api",
        True,
    )
    assert approval.attribution == "Jane Verified via api"


@pytest.fixture
def served_intake(oncall_home: Path, prefect_api: str) -> Iterator[str]:
    """The intake app on a real port (dispatch off), for the CLI to reach."""
    settings = OncallSettings(home=oncall_home, intake_token=SecretStr(TOKEN))
    app = create_app(settings, fast_intake(), prefect_api_url=prefect_api, dispatch=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "intake did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_oncall_approve_with_a_token_is_a_verified_decision(
    faulted: FaultedCluster,  # noqa: F811
    prefect_api: str,
    served_intake: str,
    oncall_home: Path,
) -> None:
    faulted.config.guard.verified_approver_required = GuardPolicy().verified_approver_required
    env = {
        **os.environ,
        "ONCALL_HOME": str(oncall_home),
        "PREFECT_API_URL": prefect_api,
        "COLUMNS": "200",
    }
    added = subprocess.run(
        [ONCALL, "approvers", "add", "Omar CLI"], env=env, capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("oca_")
    listed = subprocess.run([ONCALL, "approvers", "list"], env=env, capture_output=True, text=True)
    assert "Omar CLI" in listed.stdout and token not in listed.stdout  # stored hashed
    playbook = Playbook(faulted)
    playbook.start()
    paused = PrefectApi(prefect_api).wait_for_pause(
        incident_run_name_for(faulted.alert), timeout_s=60
    )
    approve = [ONCALL, "approve", str(paused.id), "--intake-url", served_intake]
    wrong = subprocess.run(
        [*approve, "--token", "oca_wrong"], env=env, capture_output=True, text=True
    )
    assert wrong.returncode != 0 and "401" in wrong.stdout + wrong.stderr
    ok = subprocess.run(
        [*approve, "--reason", "bad release"],
        env={**env, "ONCALL_APPROVER_TOKEN": token},
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "as Omar CLI (verified)" in ok.stdout
    playbook.join(90)
    assert playbook.state.name == "Resolved", playbook.state  # type: ignore[attr-defined]
    (approval,) = (
        IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert)).approvals
    )
    assert (approval.approver, approval.channel, approval.verified) == ("Omar CLI", "cli", True)


def test_approvals_endpoint_answers_4xx_for_bad_requests(intake: TestClient) -> None:
    store = IncidentStore(OncallSettings().store_url)
    token = ApproverTokens(store).add("Ann")
    auth = {"Authorization": f"Bearer {token}"}
    missing = intake.post(f"/v1/approvals/{UUID(int=1)}", json={"approve": True}, headers=auth)
    assert missing.status_code == 404
    wrong = intake.post(f"/v1/approvals/{UUID(int=1)}", json={"approve": "maybe"}, headers=auth)
    assert wrong.status_code == 422 and "approve" in wrong.json()["detail"]
    form = intake.post(f"/v1/approvals/{UUID(int=1)}", content=b"approve=1", headers=auth)
    assert form.status_code == 415
    not_a_run = intake.post("/v1/approvals/not-a-uuid", json={"approve": True}, headers=auth)
    assert not_a_run.status_code == 422
    ApproverTokens(store).remove("Ann")
    revoked = intake.post(f"/v1/approvals/{UUID(int=1)}", json={"approve": True}, headers=auth)
    assert revoked.status_code == 401
