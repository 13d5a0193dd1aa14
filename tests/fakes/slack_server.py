"""A local fake of the Slack Web API that checks requests the way Slack does.

Use it through the ``fake_slack`` fixture (import it into a conftest) or directly::

    with FakeSlack(channels={"C0ONCALL01": "oncall"}, usergroups={"S0PRIMARY1": "oncall"}) as slack:
        client = SlackClient(slack.token, base_url=slack.url)
        ...
        assert slack.messages[0].text == "..."

Every request is recorded (``requests``); knobs make the next calls of a method fail
with HTTP 429 + ``Retry-After`` (``rate_limit_next``), a 5xx (``server_error_next``) or
an ``ok: false`` error (``error_next``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

Answer = tuple[int, dict[str, str], dict[str, Any]]
BOT_USER_ID, BOT_ID, APP_ID, TEAM_ID = "U0FAKEBOT01", "B0FAKEBOT01", "A0FAKEAPP01", "T0FAKETEAM1"
DEFAULT_TOKEN = "xoxb-0000-fake-slack-token"


@dataclass
class RecordedRequest:
    """One call as the server received it: method, merged arguments, headers."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class Message:
    """A message in a channel (thread replies have ``thread_ts``)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    user: str = BOT_USER_ID
    edited: bool = False

    def as_json(self, with_metadata: bool) -> dict[str, Any]:
        """The message as conversations.history returns it."""
        out: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "user": self.user,
            "bot_id": BOT_ID if self.user == BOT_USER_ID else None,
            "app_id": APP_ID if self.user == BOT_USER_ID else None,
        }
        if self.blocks:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            out["metadata"] = self.metadata
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class _Failure:
    remaining: int
    status: int
    error: str
    retry_after: int | None = None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _as_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


class FakeSlack:
    """A Slack workspace on 127.0.0.1: channels, user groups, an app's messages."""

    def __init__(
        self,
        channels: dict[str, str] | None = None,
        usergroups: dict[str, str] | None = None,
        users: set[str] | None = None,
        token: str = DEFAULT_TOKEN,
    ) -> None:
        self.token = token
        self.channels = dict(channels or {"C0INCIDENT1": "incidents"})
        self.usergroups: dict[str, dict[str, Any]] = {
            gid: {"id": gid, "handle": handle, "users": []}
            for gid, handle in (usergroups or {}).items()
        }
        self.users = set(users) if users is not None else None
        self.requests: list[RecordedRequest] = []
        self.messages: list[Message] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._lock = threading.Lock()
        self._last_ts = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "usergroups.users.update": self._usergroup_update,
            "usergroups.users.list": self._usergroup_list,
        }

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL to hand to ``WebClient(base_url=...)``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def start(self) -> FakeSlack:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- workspace setup -------------------------------------------------------------
    def add_channel(self, channel_id: str, name: str) -> None:
        """Create a channel the app is a member of."""
        with self._lock:
            self.channels[channel_id] = name

    def add_usergroup(self, usergroup: str, handle: str, users: list[str] | None = None) -> None:
        """Create a user group (S...) with some members."""
        with self._lock:
            self.usergroups[usergroup] = {"id": usergroup, "handle": handle, "users": users or []}

    # -- test knobs ------------------------------------------------------------------
    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and Retry-After."""
        self._add_failure(method, _Failure(times, 429, "ratelimited", retry_after))

    def server_error_next(self, method: str, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP 5xx."""
        self._add_failure(method, _Failure(times, status, "service_unavailable"))

    def error_next(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false`` and ``error``."""
        self._add_failure(method, _Failure(times, 200, error))

    def _add_failure(self, method: str, failure: _Failure) -> None:
        with self._lock:
            self._failures.setdefault(method, []).append(failure)

    # -- what peers received ---------------------------------------------------------
    def calls(self, method: str) -> list[RecordedRequest]:
        """Recorded requests of one method, in arrival order (failed ones included)."""
        return [r for r in self.requests if r.method == method]

    def members(self, usergroup: str) -> list[str]:
        """Current members of a user group."""
        return list(self.usergroups[usergroup]["users"])

    def channel_messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel (ID or name), oldest first."""
        cid = self._channel_id(channel) or channel
        return [m for m in self.messages if m.channel == cid and m.thread_ts is None]

    # -- request handling ------------------------------------------------------------
    def handle(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> Answer:
        """Answer one API call: HTTP status, extra headers, JSON body."""
        record = RecordedRequest(method, args, headers)
        with self._lock:
            self.requests.append(record)
            status, extra, body = self._answer(method, args, headers)
        record.status, record.response = status, body
        return status, extra, body

    def _answer(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> Answer:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        token = token or args.get("token")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        queue = self._failures.get(method) or []
        if queue:
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.pop(0)
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return failure.status, extra, {"ok": False, "error": failure.error}
        handler = self._methods.get(method)
        if handler is None:
            return 404, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(args)

    def _next_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last_ts + 100)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel_id(self, channel: str, by_name: bool = True) -> str | None:
        if channel in self.channels:
            return channel
        if by_name:
            name = channel.removeprefix("#")
            return next((cid for cid, n in self.channels.items() if n == name), None)
        return None

    @staticmethod
    def _error(code: str) -> dict[str, Any]:
        return {"ok": False, "error": code}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": TEAM_ID}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return self._error("channel_not_found")
        cid = self._channel_id(str(args["channel"]))
        if cid is None:
            return self._error("channel_not_found")
        blocks = _as_json(args.get("blocks")) or []
        text = str(args.get("text") or "")
        if not text and not blocks and not args.get("attachments"):
            return self._error("no_text")
        if not isinstance(blocks, list) or any(not isinstance(b, dict) for b in blocks):
            return self._error("invalid_blocks")
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not any(m.channel == cid and m.ts == thread_ts for m in self.messages):
            return self._error("thread_not_found")
        metadata = _as_json(args.get("metadata"))
        message = Message(cid, self._next_ts(), text, blocks, thread_ts, metadata)
        self.messages.append(message)
        return {"ok": True, "channel": cid, "ts": message.ts, "message": message.as_json(False)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel_id(str(args.get("channel", "")), by_name=False)
        if cid is None:
            return self._error("channel_not_found")
        found = next(
            (m for m in self.messages if m.channel == cid and m.ts == args.get("ts")), None
        )
        if found is None:
            return self._error("message_not_found")
        if found.user != BOT_USER_ID:
            return self._error("cant_update_message")
        blocks = _as_json(args.get("blocks"))
        if not args.get("text") and not blocks:
            return self._error("no_text")
        found.text = str(args.get("text") or found.text)
        found.blocks = blocks if blocks is not None else found.blocks
        found.edited = True
        return {"ok": True, "channel": cid, "ts": found.ts, "text": found.text}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        # Like Slack, conversations.history wants a channel ID, not a name.
        cid = self._channel_id(str(args.get("channel", "")), by_name=False)
        if cid is None:
            return self._error("channel_not_found")
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        limit = int(args.get("limit") or 100)
        with_meta = _truthy(args.get("include_all_metadata"))
        found = [
            m.as_json(with_meta)
            for m in reversed(self.messages)
            if m.channel == cid and m.thread_ts is None and oldest < float(m.ts) <= latest
        ]
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel_id(str(args.get("channel", "")), by_name=False)
        if cid is None:
            return self._error("channel_not_found")
        ts = args.get("ts")
        thread = [
            m.as_json(False)
            for m in self.messages
            if m.channel == cid and (m.ts == ts or m.thread_ts == ts)
        ]
        if not thread:
            return self._error("thread_not_found")
        return {"ok": True, "messages": thread, "has_more": False}

    def _usergroup_update(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return self._error("no_such_subteam")
        users = [u.strip() for u in str(args.get("users", "")).split(",") if u.strip()]
        if not users:
            return self._error("no_users_provided")
        if self.users is not None and any(u not in self.users for u in users):
            return self._error("invalid_users")
        group["users"] = users
        return {"ok": True, "usergroup": {**group, "user_count": len(users)}}

    def _usergroup_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return self._error("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            if not url.path.startswith("/api/"):
                self._send(404, {}, {"ok": False, "error": "unknown_method"})
                return
            args: dict[str, Any] = dict(parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                if raw and kind == "application/json":
                    body = json.loads(raw)
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                    args.update(body)
                elif raw:
                    args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except ValueError:
                self._send(200, {}, {"ok": False, "error": "invalid_json"})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(*fake.handle(url.path.removeprefix("/api/"), args, headers))

        def _send(self, status: int, extra: dict[str, str], body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running fake Slack with channel C0INCIDENT1 (#incidents) and no user groups."""
    with FakeSlack() as slack:
        yield slack
