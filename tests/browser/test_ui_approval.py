"""A human approves the rollback in the Prefect UI, in a real browser, and it happens.

Playwright drives Debian's Chromium (never a browser Playwright downloads): it opens the
paused flow run, presses Resume, fills the form Prefect generates from ApprovalDecision and
submits it. Screenshots are kept under test-artifacts/.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, expect, sync_playwright

from flows.high_api_error_rate import high_api_error_rate
from flows.naming import incident_run_name_for
from oncall.clients.prefect_api import PrefectApi
from oncall.models import Incident
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from tests.playbooks.conftest import BLUE, NAMESPACE, FaultedCluster, faulted  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GOOD = "ghcr.io/gremlinsai/backend:1.4.2"
APPROVER, REASON = "Dana Browser", "1.5.0 spikes 5xx; back to 1.4.2"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian package `chromium`)"
)


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


def test_approval_in_the_prefect_ui_resumes_the_run_and_rolls_back(
    faulted: FaultedCluster,  # noqa: F811
    prefect_api: str,
) -> None:
    playbook = PlaybookThread(faulted)
    playbook.start()
    paused = PrefectApi(prefect_api).wait_for_pause(
        incident_run_name_for(faulted.alert), timeout_s=60
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
            page.get_by_role("button", name=re.compile(r"^\s*Resume\b")).first.click()

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
    assert (approval.approver, approval.decision, approval.reason) == (APPROVER, "approved", REASON)


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
