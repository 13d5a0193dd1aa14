"""A local fake of PagerDuty's Events API v2 that checks events the way PagerDuty does.

``POST /v2/enqueue`` with JSON: a known ``routing_key`` (32 characters), ``event_action``
trigger|acknowledge|resolve, a ``dedup_key`` (required for acknowledge/resolve), and for a
trigger a ``payload`` with ``summary``, ``source`` and ``severity`` in
critical|error|warning|info. Accepted events get 202 ``{"status": "success", "dedup_key"}``;
invalid ones 400 ``{"status": "invalid event", "errors": [...]}``. Knobs make the next
calls answer 429 (with ``Retry-After``) or a 5xx. Accepted events are kept in ``events``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ROUTING_KEY = "R0FAKEPAGERDUTYROUTINGKEY0000001"
ACTIONS = {"trigger", "acknowledge", "resolve"}
SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Received:
    """One request as the server saw it, with the status it answered."""

    body: Any
    headers: dict[str, str]
    status: int


class FakePagerDuty:
    """PagerDuty's Events API v2 on 127.0.0.1."""

    def __init__(self, routing_key: str = ROUTING_KEY, more_keys: tuple[str, ...] = ()) -> None:
        self.routing_key = routing_key
        # Integration keys of other PagerDuty services (one per team's service).
        self.routing_keys = {routing_key, *more_keys}
        self.requests: list[Received] = []
        self.events: list[dict[str, Any]] = []
        self._failures: list[tuple[int, int | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The enqueue URL (``ONCALL_PAGERDUTY_EVENTS_URL``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v2/enqueue"

    def __enter__(self) -> FakePagerDuty:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int = 429, times: int = 1, retry_after: int | None = 1) -> None:
        """Answer the next ``times`` events with ``status`` (429 carries ``Retry-After``)."""
        with self._lock:
            self._failures += [(status, retry_after if status == 429 else None)] * times

    def actions(self, dedup_key: str) -> list[str]:
        """The accepted event actions of one dedup key, in order."""
        return [e["event_action"] for e in self.events if e.get("dedup_key") == dedup_key]

    def handle(self, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """Answer one enqueue request: status, extra headers, JSON body."""
        with self._lock:
            status, extra, body, event = self._answer(raw, headers)
            self.requests.append(Received(event if event is not None else raw, headers, status))
            if status == 202 and event is not None:
                self.events.append({**event, "dedup_key": body["dedup_key"]})
        return status, extra, body

    def _answer(
        self, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any, dict[str, Any] | None]:
        if self._failures:
            status, retry_after = self._failures.pop(0)
            extra = {"Retry-After": str(retry_after)} if retry_after else {}
            return status, extra, {"status": "throttled" if status == 429 else "error"}, None
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, {}, _invalid("Content-Type must be application/json"), None
        try:
            event = json.loads(raw)
        except ValueError:
            return 400, {}, _invalid("body is not JSON"), None
        if not isinstance(event, dict):
            return 400, {}, _invalid("body is not an object"), None
        errors = _check(event, self.routing_keys)
        if errors:
            return 400, {}, {**_invalid(*errors)}, event
        key = event.get("dedup_key") or uuid.uuid4().hex
        body = {"status": "success", "message": "Event processed", "dedup_key": key}
        return 202, {}, body, event


def _invalid(*errors: str) -> dict[str, Any]:
    return {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}


def _check(event: dict[str, Any], routing_keys: set[str]) -> list[str]:
    errors = []
    if event.get("routing_key") not in routing_keys:
        errors.append("'routing_key' is invalid")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
        errors.append("'dedup_key' must be a non-empty string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not key:
        errors.append(f"'dedup_key' is required for {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        for name in ("summary", "source", "severity"):
            if not isinstance(payload.get(name), str) or not payload[name]:
                errors.append(f"'payload.{name}' is missing")
        if payload.get("severity") not in SEVERITIES:
            errors.append("'payload.severity' must be one of critical, error, warning, info")
        if len(str(payload.get("summary", ""))) > 1024:
            errors.append("'payload.summary' is longer than 1024 characters")
        links = event.get("links", [])
        if not isinstance(links, list) or any(
            not isinstance(link, dict) or not link.get("href") for link in links
        ):
            errors.append("'links' must be objects with an href")
    return errors


def _handler_for(fake: FakePagerDuty) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path != "/v2/enqueue":
                self._send(404, {}, {"status": "not found"})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(*fake.handle(raw, headers))

        def _send(self, status: int, extra: dict[str, str], body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def fake_pagerduty() -> Iterator[FakePagerDuty]:
    """A running fake PagerDuty Events API v2."""
    with FakePagerDuty() as pagerduty:
        yield pagerduty
