"""The Kubernetes REST API over HTTP: routing, verbs, pods/log and watch."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

from oncall_sandbox import protobuf, tables
from oncall_sandbox.podlogs import PodLogs
from oncall_sandbox.revisions import go_json
from oncall_sandbox.routing import Request, parse_path, route
from oncall_sandbox.scale import handle_scale
from oncall_sandbox.selectors import field_selector, label_selector
from oncall_sandbox.store import ApiError, Obj, Store
from oncall_sandbox.watch import stream_watch
from oncall_sandbox.writes import qualify, write, write_status

# `/sandbox/v1/...`: the sandbox's own endpoints (status), answered by its owner.
Extension = Callable[[str, str, bytes], Obj]


class KubernetesApi:
    """Serves the store as the Kubernetes API on 127.0.0.1."""

    def __init__(self, store: Store, logs: PodLogs, extension: Extension | None = None) -> None:
        self.store, self.logs, self.extension = store, logs, extension
        self.stopping = threading.Event()
        handler = type("Handler", (_ApiHandler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="kube-api", daemon=True
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and end open watches."""
        self.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def handle(self, req: Request) -> Obj | str:
        """Run one non-watch call; returns the body (a dict, or text for logs)."""
        try:
            return self._handle(req)
        except ApiError as exc:
            raise qualify(exc, req.resource) from None

    def _handle(self, req: Request) -> Obj | str:
        r, store, ns = req.resource, self.store, req.namespace
        if req.method == "GET" and req.subresource == "log":
            return self._log(req)
        if req.subresource == "scale":
            return handle_scale(store, req)
        if req.subresource == "status" and req.method != "GET":
            return write_status(store, req)
        if req.method == "GET" and req.name:
            obj = store.get(r.plural, ns, req.name)
            if "as=Table" in req.accept and not req.subresource:
                include = req.query.get("includeObject", "Metadata")
                return tables.as_table(r.plural, [obj], obj["metadata"]["resourceVersion"], include)
            return obj
        if req.method == "GET":
            items = self._select(req)
            if "as=Table" in req.accept:
                include = req.query.get("includeObject", "Metadata")
                return tables.as_table(r.plural, items, store.resource_version, include)
            return {
                "kind": f"{r.kind}List",
                "apiVersion": r.group_version,
                "metadata": {"resourceVersion": store.resource_version},
                "items": items,
            }
        return write(store, req)

    def _select(self, req: Request) -> list[Obj]:
        namespace = req.namespace or None
        by_label = label_selector(req.query.get("labelSelector"))
        by_field = field_selector(req.query.get("fieldSelector"))
        if req.resource.plural == "namespaces":
            namespace = None
        return self.store.list(
            req.resource.plural, namespace, lambda o: by_label(o) and by_field(o)
        )

    def _log(self, req: Request) -> str:
        pod = self.store.get("pods", req.namespace, req.name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = req.query.get("container") or (names[0] if len(names) == 1 else "")
        if not container:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod "
                f"{req.name}, choose one of: [{' '.join(names)}]",
            )
        if container not in names:
            raise ApiError(
                400, "BadRequest", f"container {container} is not valid for pod {req.name}"
            )
        previous = req.query.get("previous") in ("true", "1")
        if previous and not self.logs.has_previous(req.namespace, req.name, container):
            raise ApiError(
                400,
                "BadRequest",
                f'previous terminated container "{container}" in pod "{req.name}" not found',
            )
        if not previous and pod["status"].get("phase") != "Running":
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{req.name}" is '
                "waiting to start: ContainerCreating",
            )
        try:
            tail = int(req.query["tailLines"]) if "tailLines" in req.query else None
            since = float(req.query["sinceSeconds"]) if "sinceSeconds" in req.query else None
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid log options: {exc}") from exc
        return self.logs.read(
            req.namespace,
            req.name,
            container,
            previous=previous,
            tail=tail,
            since_seconds=since,
            timestamps=req.query.get("timestamps") in ("true", "1"),
        )

    def watch(self, req: Request, send: Callable[[Obj], None]) -> None:
        """Stream `{"type", "object"}` lines until the timeout, the client or a stop."""
        if "as=Table" in req.accept:  # `kubectl get -w` wants each object as a one-row Table
            include = req.query.get("includeObject", "Metadata")
            plain = send

            def send(event: Obj) -> None:
                if event["type"] != "ERROR":
                    obj, rv = event["object"], event["object"]["metadata"]["resourceVersion"]
                    event = {
                        **event,
                        "object": tables.as_table(req.resource.plural, [obj], rv, include),
                    }
                plain(event)

        stream_watch(self.store, req, lambda: self._select(req), send, self.stopping)


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ClassVar[KubernetesApi]

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet

    # ControllerRevisions are written as Go writes them: `kubectl rollout undo` compares the
    # bytes of their `data` with a patch it encodes itself.
    go_encoding = False

    def _encode(self, body: Obj) -> str:
        return go_json(body) if self.go_encoding else json.dumps(body)

    def _send(self, code: int, body: Obj | str) -> None:
        text = body if isinstance(body, str) else self._encode(body)
        data = text.encode()
        self.send_response(code)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, event: Obj) -> None:
        data = (self._encode(event) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _answer(self) -> None:
        self.go_encoding = False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path.startswith("/sandbox/") and self.api.extension is not None:
                self._send(200, self.api.extension(self.command, url.path, body))
                return
            parsed = parse_path(url.path, self.headers.get("Host", ""))
            if isinstance(parsed, dict):
                if self.command != "GET":
                    raise ApiError(405, "MethodNotAllowed", "method not allowed")
                self._send(200, parsed)
                return
            group, rest = parsed
            resource, ns, name, sub = route(group, rest)
            self.go_encoding = resource.plural == "controllerrevisions"
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith(protobuf.CONTENT_TYPE):  # kubectl's typed clients
                body, content_type = json.dumps(protobuf.decode(body)).encode(), "application/json"
            req = Request(
                self.command,
                group,
                resource,
                ns,
                name,
                sub,
                query,
                self.headers.get("Accept", ""),
                content_type,
                body,
            )
            if self.command == "GET" and query.get("watch") in ("true", "1"):
                self._stream(req)
                return
            self._send(201 if self.command == "POST" else 200, self.api.handle(req))
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except Exception as exc:  # a bug in the sandbox: answer like an apiserver would
            self._send(500, ApiError(500, "InternalError", repr(exc)).status())

    def _stream(self, req: Request) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.api.watch(req, self._chunk)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer
