"""An approval survives a busy server: a resume answered 503 is tried again, not dropped.

A Prefect server on SQLite, under an alert storm, answers a resume with 503 when another
writer committed between the resume's read and its write (SQLITE_BUSY_SNAPSHOT): the whole
resume is rolled back. Here a proxy in front of the real server answers the first resumes
503, as that server does, and passes everything else through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from oncall.clients.prefect_api import PrefectApi
from oncall.errors import TransientError
from tests.runner.flows import awaiting_approval

BUSY = b'{"exception_message": "Service Unavailable"}'


class BusyProxy(ThreadingHTTPServer):
    """Forwards to the Prefect server; answers the first ``busy`` resumes 503."""

    def __init__(self, upstream: str, busy: int, answer: tuple[int, bytes] = (503, b"")) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.busy, self.refused = upstream.removesuffix("/api"), busy, 0
        self.refusal = (answer[0], answer[1] or BUSY)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    server: BusyProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/resume") and self.server.refused < self.server.busy:
            self.server.refused += 1
            self._answer(*self.server.refusal)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host"}}
        answer = httpx.request(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        )
        self._answer(answer.status_code, answer.content)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _forward


@contextmanager
def busy_proxy(
    upstream: str, busy: int, answer: tuple[int, bytes] = (503, b"")
) -> Iterator[BusyProxy]:
    """A proxy to the Prefect server whose first ``busy`` resumes get ``answer`` (503)."""
    proxy = BusyProxy(upstream, busy, answer)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        # Prefect's own client retries a 503 five times with growing waits; without them
        # each busy answer reaches the product's retry at once.
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
            yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


@dataclass
class PausedRun:
    """An approval flow run, in a thread of this process, paused for its decision."""

    id: UUID
    thread: threading.Thread
    outcome: dict[str, object]

    def finished(self, timeout: float = 60) -> object:
        """Wait for the run to end; what the flow returned."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the approval run did not end"
        return self.outcome["result"]


@pytest.fixture
def paused_run(prefect_api: str) -> Iterator[PausedRun]:
    """An approval flow run paused for a decision (resumed here if a test leaves it)."""
    name = f"busy-resume-{uuid4().hex[:8]}"
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = awaiting_approval.with_options(flow_run_name=name)()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    prefect = PrefectApi(prefect_api)
    found = prefect.wait_for_pause(name, timeout_s=120)
    paused = PausedRun(found.id, thread, outcome)
    yield paused
    if thread.is_alive() and prefect.read_flow_run(found.id).state.is_paused():  # type: ignore[union-attr]
        prefect.resume(found.id, {"approve": False, "approver": "cleanup"})
    thread.join(60)


def test_a_resume_answered_503_is_tried_again_until_it_gets_through(
    prefect_api: str, paused_run: PausedRun
) -> None:
    with busy_proxy(prefect_api, busy=3) as proxy:
        PrefectApi(proxy.api_url).resume(
            paused_run.id, {"approve": True, "approver": "alice"}, busy_for_s=60
        )
        assert proxy.refused == 3
    assert paused_run.finished() is True  # the decision that got through is the person's


def test_a_server_busy_past_the_deadline_is_reported_and_the_run_keeps_waiting(
    prefect_api: str, paused_run: PausedRun
) -> None:
    with busy_proxy(prefect_api, busy=10_000) as proxy:
        started = time.monotonic()
        with pytest.raises(TransientError, match="busy"):
            PrefectApi(proxy.api_url).resume(
                paused_run.id, {"approve": True, "approver": "alice"}, busy_for_s=6
            )
        assert time.monotonic() - started < 60  # bounded by busy_for_s, not by the server
        assert proxy.refused >= 2  # tried again, not given up on the first answer
    state = PrefectApi(prefect_api).read_flow_run(paused_run.id).state
    assert state is not None and state.is_paused()  # nothing was lost: still waiting
    PrefectApi(prefect_api).resume(paused_run.id, {"approve": False, "approver": "bob"})
    assert paused_run.finished() is False


# What the server answers a resume that comes between the pause's state and its form.
NO_SCHEMA = (
    b'{"status": "ABORT", "details": {"type": "abort_details", '
    b'"reason": "Run input schema not found."}, "state": null}'
)


def test_a_resume_before_the_pause_saved_its_form_is_tried_again(
    prefect_api: str, paused_run: PausedRun
) -> None:
    # pause_flow_run proposes Paused first and saves the form's schema after: a decision
    # sent in between is refused (ABORT, nothing changed) and must not be lost.
    with busy_proxy(prefect_api, busy=2, answer=(200, NO_SCHEMA)) as proxy:
        PrefectApi(proxy.api_url).resume(
            paused_run.id, {"approve": True, "approver": "alice"}, busy_for_s=60
        )
        assert proxy.refused == 2
    assert paused_run.finished() is True
