"""A human approves the rollback in the Prefect UI, in a real browser.

Playwright drives Debian's Chromium (never a browser Playwright downloads): it opens the
paused flow run, presses Resume, fills the form Prefect generates from ApprovalDecision and
submits it. Screenshots are kept under test-artifacts/. In a drill that decision counts
(recorded unverified); under a deployed playbook's policy, a P1 rollback refuses it, the
run keeps waiting and the form says where to approve instead.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from prefect.client.schemas.objects import FlowRun

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.approval import approval_key
from oncall.clients.prefect_api import PrefectApi
from oncall.guards import GuardPolicy
from oncall.models import Incident
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.conftest import requires
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster, faulted  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GOOD = "ghcr.io/gremlinsai/backend:1.4.2"
APPROVER, REASON = "Dana Browser", "1.5.0 spikes 5xx; back to 1.4.2"
# Each expectation waits for what the UI does after a round trip to the Prefect server
# (submitting the form resumes the run); on a busy CI machine that takes more than
# Playwright's default 5 s.
expect.set_options(timeout=30_000)

pytestmark = [requires(CHROMIUM.exists(), f"{CHROMIUM} (Debian package chromium)")]


class PlaybookThread(threading.Thread):
    """Runs the playbook in-process, as the worker would; keeps its final state."""

    def __init__(self, cluster: FaultedCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.state: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.state = high_api_error_rate(
                alert=self.cluster.alert, config=self.cluster.config, return_state=True
            )
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize("policy", ["drill", "deployed"])
def test_approval_in_the_prefect_ui_resumes_the_run_and_rolls_back(
    faulted: FaultedCluster,  # noqa: F811
    prefect_api: str,
    policy: str,
) -> None:
    if policy == "deployed":
        faulted.config.guard.verified_approver_required = GuardPolicy().verified_approver_required
    # A person in a browser on a loaded machine takes a while: the run must still be waiting
    # when the form is submitted (the deployed case waits twice), not time out at 60 s.
    faulted.config.approval_timeout_s = 600
    playbook = PlaybookThread(faulted)
    playbook.start()
    paused = PrefectApi(prefect_api).wait_for_pause(
        incident_run_name_for(faulted.alert), timeout_s=120
    )
    ARTIFACTS.mkdir(exist_ok=True)
    ui = prefect_api.rstrip("/").removesuffix("/api")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            page.goto(f"{ui}/runs/flow-run/{paused.id}")
            expect(page.get_by_text(paused.name).first).to_be_visible()
            _press_resume(page)

            form = page.get_by_role("dialog")
            # The form Prefect generates from ApprovalDecision, with the plan as description.
            expect(form.get_by_text("Proposed (dry-run plan)")).to_be_visible()
            approve = form.get_by_role("switch")
            approve.click()
            expect(approve).to_have_attribute("aria-checked", "true")
            _field(form, "Approver").fill(APPROVER)
            _field(form, "Reason").fill(REASON)
            page.screenshot(path=str(ARTIFACTS / "ui-approval-form-filled.png"), full_page=True)
            form.get_by_role("button", name="Submit").click()
            expect(form).to_be_hidden()
            if policy == "deployed":
                _refused_then_verified(page, prefect_api, paused)

            playbook.join(90)
            assert not playbook.is_alive(), "the playbook did not finish after the resume"
            page.reload()
            # The run's final state, named by the playbook, as the run page shows it.
            expect(page.get_by_text("Resolved", exact=True).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-approval-run-resolved.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "ui-approval-failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    assert playbook.error is None, playbook.error
    assert playbook.state.name == "Resolved", playbook.state.message
    after = faulted.kube.health(NAMESPACE, BLUE)
    assert (after.images, after.revision) == ([GOOD], 4)
    incident = IncidentStore(OncallSettings().store_url).get(Incident.id_for(faulted.alert))
    (approval,) = incident.approvals
    assert (approval.approver, approval.decision) == (APPROVER, "approved")
    if policy == "drill":
        assert (approval.reason, approval.channel, approval.verified) == (
            REASON,
            "Prefect UI",
            False,
        )
    else:
        assert (approval.channel, approval.verified) == ("slack", True)


def _press_resume(page: Page) -> None:
    """Press Resume and wait for its form. The run page re-renders its header on every poll
    of the run, so a click waiting for the button to hold still can miss it for seconds on
    a loaded machine: dispatch the click on the button as found, until the form opens."""
    button = page.get_by_role("button", name=re.compile(r"^\s*Resume\b")).first
    deadline = time.monotonic() + 60
    while True:
        expect(button).to_be_visible()
        button.dispatch_event("click")
        try:
            expect(page.get_by_role("dialog")).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            assert time.monotonic() < deadline, "the Resume form never opened"


def _refused_then_verified(page: Page, prefect_api: str, paused: FlowRun) -> None:
    """The UI decision was refused: the run waits again and its form says why; then a
    verified approver decides (as the intake does for a Slack click)."""
    prefect = PrefectApi(prefect_api)
    first_key = paused.state.state_details.pause_key  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while True:
        state = prefect.read_flow_run(paused.id).state
        if state and state.is_paused() and state.state_details.pause_key != first_key:
            break
        assert time.monotonic() < deadline, "the run did not go back to waiting"
        time.sleep(0.2)
    page.reload()
    _press_resume(page)
    form = page.get_by_role("dialog")
    expect(form.get_by_text("unverified", exact=False).first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-approval-refused.png"), full_page=True)
    page.keyboard.press("Escape")
    prefect.decide(
        paused.id,
        approval_key(OncallSettings()),
        approve=True,
        approver=APPROVER,
        reason="verified in Slack",
        channel="slack",
    )


def _field(form: Locator, title: str) -> Locator:
    """The text box of one form field, found by the field's visible title."""
    page, box = form.page, "textarea, input[type=text]"
    # The innermost block holding both the title and a text box is the field itself
    # (the generated labels' `for` does not point at the box, so get_by_label cannot be used).
    return (
        form.locator("div")
        .filter(has=page.get_by_text(re.compile(rf"^{title}\b")))
        .filter(has=page.locator(box))
        .last.locator(box)
    )
